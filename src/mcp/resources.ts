/**
 * The workspace's files as MCP resources: `deepagents:///<path>` (the path's segments
 * percent-encoded; a server serves one workspace, so the URI names none), text as text and
 * binary files as base64 blobs. resources/list names the first RESOURCE_LIST_MAX files in path
 * order, found by listing directories from the root until it has them (not by reading the whole
 * workspace's file list: it may hold millions); any file can be read by its URI.
 */
import { type McpServer, ResourceTemplate } from "@modelcontextprotocol/server";
import type { DeepAgentsBackend } from "../core/interface.js";
import { getMimeType } from "../mime.js";
import { compareBytewise } from "../paths.js";

export const URI_SCHEME = "deepagents:";
/** resources/list stops here: a client would not show more, and a workspace can hold millions. */
export const RESOURCE_LIST_MAX = 1000;

export const uriOf = (path: string): string => `${URI_SCHEME}//${path.split("/").map(encodeURIComponent).join("/")}`;

const pathOf = (encoded: string): string => encoded.split("/").map(decodeURIComponent).join("/");

export function registerFileResources(server: McpServer, backend: DeepAgentsBackend): void {
  server.registerResource(
    "file",
    new ResourceTemplate(`${URI_SCHEME}//{+path}`, {
      list: async () => ({
        resources: (await firstFiles(backend, RESOURCE_LIST_MAX)).map((path) => ({
          uri: uriOf(path),
          name: path,
          mimeType: getMimeType(path),
        })),
      }),
    }),
    { description: `A file of workspace '${backend.workspace}'` },
    async (uri, variables) => {
      const path = pathOf(String(variables.path));
      const r = await backend.readRaw(path);
      if (r.error || !r.data) throw new Error(r.error ?? `no data for ${path}`);
      // (deepagents' FileData: our backends answer text as a string, bytes as a Uint8Array)
      const data = r.data;
      const mimeType = "mimeType" in data && data.mimeType ? data.mimeType : getMimeType(path);
      const content = data.content;
      return {
        contents: [
          content instanceof Uint8Array
            ? { uri: uri.href, mimeType, blob: Buffer.from(content).toString("base64") }
            : { uri: uri.href, mimeType, text: Array.isArray(content) ? content.join("\n") : content },
        ],
      };
    },
  );
}

/** The first `max` files in path order: a depth-first walk of ls() answers, stopping at `max`. */
async function firstFiles(backend: DeepAgentsBackend, max: number): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const listing = await backend.ls(dir);
    if (listing.error) throw new Error(listing.error);
    // (A directory's entry ends in "/", so byte order here is the order of the paths below it.)
    for (const entry of (listing.files ?? []).sort((a, b) => compareBytewise(a.path, b.path))) {
      if (found.length >= max) return;
      if (entry.is_dir) await walk(entry.path);
      else found.push(entry.path);
    }
  };
  await walk("/");
  return found;
}
