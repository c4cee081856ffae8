/**
 * withShell() against real bash: each script runs (a) through withShell over a fresh workspace
 * in PostgreSQL and in S3 and (b) in /bin/bash in a temporary directory holding the same files,
 * and the two answers (stdout, stderr lines, exit code, formatted the same way) must be equal.
 * Where GNU tools list files in the directory's on-disk order (grep -r, find over several
 * files: WALKS), the lines are compared sorted.
 *
 * Left out, because they cannot match: ls -l (owners, times); just-bash's own wording where it
 * differs from GNU's on any filesystem (`ls missing` says "ls: missing: No such file or
 * directory", `uniq -c` pads counts to 4 columns, `cat dir` says "No such file or directory",
 * `sort` orders by locale, not bytes); a redirect into a missing directory (just-bash ends the
 * script there with the error); grep's report on binary files (the store does not search them).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DeepAgentsBackend } from "../src/core/interface.js";
import { withShell } from "../src/shell/index.js";
import { formatResponse } from "../src/shell/output.js";
import { testBackend, uniqueName } from "./helpers/db.js";
import { startTestS3 } from "./helpers/s3.js";

const pg = await testBackend();
const s3 = await startTestS3();
const scratch = await mkdtemp(path.join(tmpdir(), "shell-differential-"));
test.after(async () => {
  await pg.close();
  await s3.close();
  await rm(scratch, { recursive: true, force: true });
});

const FILES: Record<string, string> = {
  "README.md": "# Demo\nhello world\n",
  "src/a.ts": "export const a = 1;\n// TODO: fix a\nfunction alpha() {}\n",
  "src/b.ts": "import { a } from './a';\nexport const b = a + 1;\n// todo lower\n",
  "src/lib/c.js": "const c = 3;\nmodule.exports = c;\n",
  "docs/guide.md": "Intro\nUsage: run it\nTODO docs\n",
  "data/nums.txt": "3\n1\n2\n10\n",
  "data/words.txt": "pear\napple\nfig\napple\n",
  ".hidden/secret.txt": "hidden TODO\n",
};

/** Scripts whose output does not depend on the order a directory lists its entries in. */
const SCRIPTS = [
  "cat README.md",
  "cat src/a.ts src/b.ts",
  "cat missing.txt; echo rc=$?",
  "ls",
  "ls src",
  "ls -a",
  "ls src/lib data",
  "find src/ -type f -name 'c.*'",
  "grep -rn TODO src",
  "grep -rn 'a\\.ts' src; echo rc=$?",
  "grep -rnF '[a]' . ; echo rc=$?",
  "grep -rq TODO . && echo found",
  "grep -rn nomatch .; echo rc=$?",
  "grep -rc TODO src/a.ts",
  "grep -n TODO src/a.ts docs/guide.md",
  "sed -n '2p' src/a.ts",
  "sed 's/apple/APPLE/g' data/words.txt",
  "sed -i 's/pear/PEAR/' data/words.txt && cat data/words.txt",
  "awk '{s+=$1} END {print s}' data/nums.txt",
  "wc -l src/a.ts",
  "wc -l < src/a.ts",
  "head -n 2 data/words.txt; tail -n 1 data/words.txt",
  "sort data/words.txt | uniq",
  "sort -n data/nums.txt",
  "diff data/words.txt data/nums.txt; echo rc=$?",
  "cat data/words.txt | grep apple | wc -l",
  "tr a-z A-Z < data/words.txt",
  "cut -c1-3 data/words.txt",
  "echo hello > out.txt && cat out.txt && echo more >> out.txt && cat out.txt",
  "echo one 2> err.txt > out.txt; cat out.txt err.txt",
  "cat missing.txt 2> err.txt; cat err.txt",
  "mkdir -p x/y/z && ls x/y",
  "mkdir x && mkdir x; echo rc=$?",
  "mkdir -p x && mv data/nums.txt x/ && ls x data",
  "mv src/a.ts src/z.ts && ls src",
  "cp README.md R2.md && cat R2.md",
  "rm -r src && ls",
  "rm data/words.txt data/nums.txt && ls data && ls",
  "rm docs; echo rc=$?",
  "for f in data/*.txt; do echo $f; done",
  "echo src/*.ts",
  "x=$(wc -l < data/nums.txt); echo $x",
  "test -d src && echo dir; test -f README.md && echo file; test -e nope || echo none",
  "touch new.txt && ls && wc -c new.txt",
];

/**
 * Scripts listing several files by walking directories: GNU find and grep -r answer in the
 * directory's on-disk order, which no two filesystems share, so their lines are compared sorted.
 */
const WALKS = [
  "find . -name '*.ts'",
  "find . -type f",
  "find src -type f -name '*.ts'",
  "find . -maxdepth 1 -type f",
  "find . -type f -path './src/*'",
  "find . -type d",
  "cp -r src copy && find copy -type f",
  "grep -rn TODO .",
  "grep -r TODO",
  "grep -rni todo .",
  "grep -rl TODO .",
  "grep -rc TODO src",
  "grep -rnw a src",
  "grep -rn --include='*.md' TODO .",
  "grep -rnE 'alpha|module' .",
  "grep -rn '^export' src",
  "grep -rhn TODO docs src",
  "grep -rn TODO nope src; echo rc=$?",
  "grep -rn 'p\\{2\\}' data",
  "grep -rnE 'a+ ' src",
  "grep -rn '[0-9]' data",
  "grep -rnx 'fig' data",
  "grep -rn -m1 apple data",
  "grep -rn --exclude='*.ts' TODO .",
  "grep -rn --exclude-dir=lib c src",
  "grep -rniF 'TODO:' .",
  "grep -rn -e pear -e fig data",
  "grep -rlw 'a' .",
  "find . -type f -iname 'READ*'",
  "find . -mindepth 2 -type f -name '*.txt'",
];

const stores: Array<[string, () => Promise<DeepAgentsBackend>]> = [
  ["PostgreSQL", async () => pg.withWorkspace(uniqueName("diff"))],
  [`S3 (${s3.kind})`, () => s3.backend()],
];

/** Real bash in a fresh directory with FILES; its answer formatted as withShell formats one. */
async function realBash(script: string): Promise<string> {
  const dir = await mkdtemp(path.join(scratch, "run-"));
  for (const [file, content] of Object.entries(FILES)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), content);
  }
  const run = spawnSync("bash", ["-c", script], {
    cwd: dir,
    // The C locale: GNU tools quote names 'x' (just-bash's way), not ‘x’.
    env: { PATH: process.env.PATH, HOME: dir, LC_ALL: "C" },
    encoding: "utf8",
  });
  return formatResponse(run.stdout, run.stderr, run.status ?? 1, 1_000_000).output;
}

/** An answer with its lines in sorted order (the [stderr] lines stay after stdout's). */
function sortedLines(output: string): string {
  return output
    .split("\n")
    .sort((x, y) => Number(x.startsWith("[stderr]")) - Number(y.startsWith("[stderr]")) || (x < y ? -1 : x > y ? 1 : 0))
    .join("\n");
}

for (const [name, fresh] of stores) {
  test(`${name}: ${SCRIPTS.length + WALKS.length} scripts answer as /bin/bash does`, async () => {
    const differences: string[] = [];
    for (const script of [...SCRIPTS, ...WALKS]) {
      const backend = await fresh();
      await backend.uploadFiles(Object.entries(FILES).map(([file, content]) => [`/${file}`, Buffer.from(content)]));
      let ours = (await withShell(backend, { maxOutputBytes: 1_000_000 }).execute(script)).output;
      let theirs = await realBash(script);
      if (WALKS.includes(script)) [ours, theirs] = [sortedLines(ours), sortedLines(theirs)];
      if (ours !== theirs) differences.push(`$ ${script}\n--- withShell\n${ours}\n--- bash\n${theirs}`);
    }
    assert.is(differences.length, 0, `\n${differences.join("\n\n")}`);
  });
}

test.run();
