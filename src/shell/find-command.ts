/**
 * find -type f in the store. A find through the filesystem adapter lists every directory of the
 * tree one call at a time; here one glob() of the backend lists the files below each starting
 * point (narrowed by the -name pattern's literal ending) and the tests run on that list. Output is
 * GNU find's: each file as the starting point spelled it ("./a/b.ts" from ".", "src/b.ts" from
 * "src/"), in the order of a walk listing each directory sorted.
 *
 * Accepted: starting points, then -type f with -name, -iname, -path, -ipath (-wholename),
 * -maxdepth, -mindepth, -a/-and and -print. -type f is required: glob() lists files, and a
 * directory (an empty one exists in the store too) could match the other tests. Anything else
 * (-o, !, parentheses, -exec, -delete, -newer, -size, a missing starting point, /dev or /bin)
 * runs just-bash's find over the adapter.
 */
import { type Command, defineCommand, type ExecResult } from "just-bash";
import type { DeepAgentsBackend } from "../core/interface.js";
import { fnmatchRegex } from "./fnmatch.js";
import { HOST_MATCH_TIMEOUT, hostCall, hostRegexTests } from "./host-call.js";
import { compareTreeOrder, isWithin, resolveShellPath } from "./shell-paths.js";
import type { SystemPaths } from "./system-paths.js";

type Context = Parameters<Command["execute"]>[1];

interface FindRequest {
  starts: string[];
  /** Tests on the name (basename) and on the path as printed. */
  name: RegExp[];
  path: RegExp[];
  /** The literal ending every name must have (from -name), to narrow the store's listing. */
  suffix: string;
  minDepth: number;
  maxDepth: number;
}

export function findCommand(backend: DeepAgentsBackend, system: SystemPaths): Command {
  return defineCommand("find", async (args, ctx) => {
    const request = parseFind(args);
    const result = request && (await findInStore(backend, system, request, ctx));
    return result ?? ctx.origCommand!(args);
  });
}

function parseFind(args: string[]): FindRequest | null {
  const request: FindRequest = { starts: [], name: [], path: [], suffix: "", minDepth: 0, maxDepth: Infinity };
  let i = 0;
  while (i < args.length && !args[i].startsWith("-") && args[i] !== "(" && args[i] !== "!") {
    request.starts.push(args[i++]);
  }
  let files = false;
  for (; i < args.length; i++) {
    const [test, value] = [args[i], args[i + 1]];
    if (test === "-a" || test === "-and" || (test === "-print" && i === args.length - 1)) continue;
    if (value === undefined) return null;
    i++;
    if (test === "-type" && value === "f" && !files) files = true;
    else if (test === "-name" || test === "-iname") {
      const regex = fnmatchRegex(value, test === "-iname");
      if (!regex) return null;
      request.name.push(regex);
      if (test === "-name") request.suffix = literalEnding(value) || request.suffix;
    } else if (test === "-path" || test === "-wholename" || test === "-ipath" || test === "-iwholename") {
      const regex = fnmatchRegex(value, test.startsWith("-i"));
      if (!regex) return null;
      request.path.push(regex);
    } else if ((test === "-maxdepth" || test === "-mindepth") && /^\d+$/.test(value)) {
      if (test === "-maxdepth") request.maxDepth = Number(value);
      else request.minDepth = Number(value);
    } else return null;
  }
  if (!files) return null;
  if (request.starts.length === 0) request.starts.push(".");
  return request;
}

/** The characters after the pattern's last wildcard, when they are plain (a file extension, say). */
function literalEnding(pattern: string): string {
  return /[\w.-]*$/.exec(pattern.replace(/\\/g, "*"))![0];
}

async function findInStore(
  backend: DeepAgentsBackend,
  system: SystemPaths,
  request: FindRequest,
  ctx: Context,
): Promise<ExecResult | null> {
  let stdout = "";
  for (const start of request.starts) {
    const root = resolveShellPath(ctx.cwd, start);
    if (system.owns(root)) return null;
    let isDirectory: boolean;
    try {
      isDirectory = (await ctx.fs.stat(root)).isDirectory;
    } catch {
      // just-bash's find words a missing starting point.
      return null;
    }
    const candidates = isDirectory ? await filesBelow(backend, root, request.suffix) : [root];
    if (candidates === null) return null;
    // The name and path tests are the caller's wildcards as JavaScript regexes, which backtrack:
    // run under the command's time limit, not on the event loop's.
    const matched = hostRegexTests(ctx, () =>
      candidates.flatMap((path) => {
        const below = isDirectory ? path.slice(root === "/" ? 1 : root.length + 1) : "";
        const depth = below === "" ? 0 : below.split("/").length;
        const printed = below === "" ? start : start.endsWith("/") ? start + below : `${start}/${below}`;
        const name = below === "" ? start.replace(/\/+$/, "").split("/").pop() || start : path.split("/").pop()!;
        if (depth < request.minDepth || depth > request.maxDepth) return [];
        return request.name.every((t) => t.test(name)) && request.path.every((t) => t.test(printed)) ? [printed] : [];
      }),
    );
    if (matched === null) return { stdout, stderr: `find: ${HOST_MATCH_TIMEOUT}\n`, exitCode: 1 };
    for (const printed of matched) stdout += `${printed}\n`;
  }
  return { stdout, stderr: "", exitCode: 0 };
}

/** The files below `root`, in walk order; null when the store cannot list them. */
async function filesBelow(backend: DeepAgentsBackend, root: string, suffix: string): Promise<string[] | null> {
  const listing = await hostCall(() => backend.glob(`**/*${suffix}`, root));
  if (listing.error) return null;
  return (listing.files ?? [])
    .map((f) => f.path)
    .filter((p) => !p.endsWith("/") && p !== root && isWithin(root, p))
    .sort(compareTreeOrder);
}
