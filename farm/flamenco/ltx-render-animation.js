// Flamenco 3 custom job type: put this file in the Manager's `scripts` folder.
// One task per shot range; a shot's windows stay together in one task (each continues from the
// previous one), so Flamenco's frame chunking does not apply. A failed task is simply requeued: the
// rerun resumes from animation.json in the task's output folder. See docs/render-farm.md.
// Checked by tests/test_farm_templates.py: compiled in node with a stand-in for Flamenco's `author`
// API, and the commands it makes run against a real render server.

const JOB_TYPE = {
  label: "LTX Render Animation",
  settings: [
    { key: "blendfile", type: "string", subtype: "file_path", required: true,
      description: "The .blend; its LTX Render panel settings are used" },
    { key: "shots", type: "string", required: true, description: "e.g. 1-240, 241-480 (one task each)" },
    { key: "server", type: "string", required: true, description: "render server host:port" },
    { key: "render_output_root", type: "string", subtype: "dir_path", required: true,
      description: "one folder per shot is made below it (shot_<range>)" },
    { key: "python", type: "string", default: "python",
      description: "the Python of this project's environment, e.g. /opt/ltx-render/.venv/bin/python" },
    { key: "token_file", type: "string", default: "", description: "file with the server's bearer token" },
    { key: "prompt", type: "string", default: "", description: "overrides the .blend's prompt ('' = the .blend's)" },
    { key: "quality", type: "string", choices: ["final", "preview"], default: "final",
      description: "final: the full settings; preview: half size, one stage (not the .blend's saved switch)" },
    { key: "max_frames", type: "int32", default: 121, description: "frames per window, 8k+1" },
    { key: "overlap", type: "int32", default: 17, description: "frames a window re-renders, 8m+1" },
  ],
};

function shotRanges(text) {
  return text.split(",").map((r) => r.trim()).filter((r) => r.length > 0);
}

function compileJob(job) {
  const s = job.settings;
  for (const range of shotRanges(s.shots)) {
    // "blender-render" is the Worker command that runs `{exe} {exeArgs} {argsBefore} {blendfile} {args}`
    // and follows its output: with exe = this project's Python it runs the render-animation command
    // line on the .blend, which opens it in Blender-as-a-module (bpy) itself.
    const task = author.Task(`shot ${range}`, "blender");
    task.addCommand(author.Command("blender-render", {
      exe: s.python || "python",
      exeArgs: "",
      argsBefore: ["-m", "blender_addon.cli", "render-animation"],
      blendfile: s.blendfile,
      args: ["--frames", range, "--server", s.server, "--token-file", s.token_file || "", "--prompt", s.prompt || "",
             `--${s.quality || "final"}`, "--max-frames", String(s.max_frames || 121), "--overlap", String(s.overlap || 17),
             "--out", `${s.render_output_root}/shot_${range}`, "--progress", "json"],
    }));
    job.addTask(task);
  }
}
