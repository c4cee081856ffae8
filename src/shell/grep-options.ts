/**
 * grep's command line, read for the server-side path (grep-command.ts). Only a recursive search
 * with the options that path reproduces exactly is accepted; anything else (reading standard
 * input, -v, -o, context lines, -L, -f, -P, --color=always, an option not listed here) answers
 * null, and just-bash's own grep runs the command as given.
 */
import type { Syntax } from "./grep-pattern.js";

export interface GrepRequest {
  patterns: string[];
  syntax: Syntax;
  ignoreCase: boolean;
  lineNumbers: boolean;
  count: boolean;
  filesWithMatches: boolean;
  quiet: boolean;
  noMessages: boolean;
  /** -H / -h; default: names shown when more than one file can be searched. */
  filenames: "default" | "always" | "never";
  wordRegexp: boolean;
  lineRegexp: boolean;
  /** -m: matching lines per file. */
  maxCount: number | null;
  include: string[];
  exclude: string[];
  excludeDir: string[];
  operands: string[];
}

/** Each flag letter and what it sets. */
const FLAGS: Record<string, Partial<GrepRequest>> = {
  n: { lineNumbers: true },
  i: { ignoreCase: true },
  y: { ignoreCase: true },
  c: { count: true },
  l: { filesWithMatches: true },
  w: { wordRegexp: true },
  x: { lineRegexp: true },
  F: { syntax: "fixed" },
  E: { syntax: "extended" },
  G: { syntax: "basic" },
  H: { filenames: "always" },
  h: { filenames: "never" },
  q: { quiet: true },
  s: { noMessages: true },
};

const LONG_FLAGS: Record<string, string> = {
  "line-number": "n",
  "ignore-case": "i",
  count: "c",
  "files-with-matches": "l",
  "word-regexp": "w",
  "line-regexp": "x",
  "fixed-strings": "F",
  "extended-regexp": "E",
  "basic-regexp": "G",
  "with-filename": "H",
  "no-filename": "h",
  quiet: "q",
  silent: "q",
  "no-messages": "s",
};

/** Options taking a value: the short letter or long name, and where the value goes. */
const VALUED: Record<string, (r: GrepRequest, value: string) => boolean> = {
  e: addPatterns,
  regexp: addPatterns,
  m: setMaxCount,
  "max-count": setMaxCount,
  include: (r, v) => r.include.push(v) > 0,
  exclude: (r, v) => r.exclude.push(v) > 0,
  "exclude-dir": (r, v) => r.excludeDir.push(v) > 0,
  // Output goes to a pipe, never a terminal: only colouring that stays off is the same output.
  color: (_r, v) => v === "never" || v === "auto",
  colour: (_r, v) => v === "never" || v === "auto",
};

/** GNU reads a pattern operand as newline-separated patterns. */
function addPatterns(r: GrepRequest, value: string): boolean {
  r.patterns.push(...value.split("\n"));
  return true;
}

function setMaxCount(r: GrepRequest, value: string): boolean {
  if (!/^\d+$/.test(value)) return false;
  r.maxCount = Number(value);
  return true;
}

export function parseGrep(args: string[]): GrepRequest | null {
  const r: GrepRequest = {
    patterns: [],
    syntax: "basic",
    ignoreCase: false,
    lineNumbers: false,
    count: false,
    filesWithMatches: false,
    quiet: false,
    noMessages: false,
    filenames: "default",
    wordRegexp: false,
    lineRegexp: false,
    maxCount: null,
    include: [],
    exclude: [],
    excludeDir: [],
    operands: [],
  };
  let recursive = false;
  let patternGiven = false;
  let options = true;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (options && arg === "--") {
      options = false;
    } else if (!options || !arg.startsWith("-") || arg === "-") {
      r.operands.push(arg);
    } else if (arg.startsWith("--")) {
      const [name, attached] = splitLong(arg.slice(2));
      if (name === "recursive" || name === "dereference-recursive") recursive = true;
      else if (LONG_FLAGS[name] && attached === undefined) Object.assign(r, FLAGS[LONG_FLAGS[name]]);
      else if (VALUED[name]) {
        // --color alone means auto.
        const value = attached ?? (name.startsWith("colo") ? "auto" : args[++i]);
        if (value === undefined || !VALUED[name](r, value)) return null;
        if (name === "regexp") patternGiven = true;
      } else return null;
    } else {
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j];
        if (letter === "r" || letter === "R") recursive = true;
        else if (FLAGS[letter]) Object.assign(r, FLAGS[letter]);
        else if (letter === "e" || letter === "m") {
          const value = j + 1 < arg.length ? arg.slice(j + 1) : args[++i];
          if (value === undefined || !VALUED[letter](r, value)) return null;
          if (letter === "e") patternGiven = true;
          break;
        } else return null;
      }
    }
  }
  if (!patternGiven) {
    const pattern = r.operands.shift();
    if (pattern === undefined) return null;
    addPatterns(r, pattern);
  }
  if (!recursive || r.operands.includes("-")) return null;
  return r;
}

function splitLong(option: string): [string, string | undefined] {
  const eq = option.indexOf("=");
  return eq === -1 ? [option, undefined] : [option.slice(0, eq), option.slice(eq + 1)];
}
