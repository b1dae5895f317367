// Runs a Flamenco 3 job type's compileJob in node with a stand-in for Flamenco's `author` API (the
// calls the job type makes: Task, Command, addCommand, addTask) and prints the tasks as JSON.
// Usage: node flamenco_compile.js JOB_TYPE.js '{"settings": {...}}'
const fs = require("fs");
const vm = require("vm");

const [file, jobJson] = process.argv.slice(2);
const author = {
  Task: (name, type) => ({ name, type, commands: [], addCommand(c) { this.commands.push(c); } }),
  Command: (type, parameters) => ({ type, parameters }),
};
const job = { ...JSON.parse(jobJson), tasks: [], addTask(t) { this.tasks.push(t); } };
const context = vm.createContext({ author });
vm.runInContext(fs.readFileSync(file, "utf8") + "\nthis.JOB_TYPE = JOB_TYPE; this.compileJob = compileJob;", context);
context.compileJob(job);
process.stdout.write(JSON.stringify({
  label: context.JOB_TYPE.label,
  settings: context.JOB_TYPE.settings.map((s) => s.key),
  tasks: job.tasks.map(({ name, type, commands }) => ({ name, type, commands })),
}));
