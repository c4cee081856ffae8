/**
 * A command's result as the agent reads it, the way deepagents' LocalShellBackend words it (so
 * a model sees one convention whichever sandbox runs the command): stdout, then each stderr line
 * prefixed "[stderr] ", "<no output>" when both are empty, cut at the output limit with a note,
 * and "Exit code: N" appended when the command failed.
 */
import type { ExecuteResponse } from "deepagents";

export function formatResponse(stdout: string, stderr: string, exitCode: number, maxBytes: number): ExecuteResponse {
  const parts: string[] = [];
  if (stdout) parts.push(stdout);
  if (stderr)
    parts.push(
      ...stderr
        .trim()
        .split("\n")
        .map((line) => `[stderr] ${line}`),
    );
  let output = parts.length > 0 ? parts.join("\n") : "<no output>";
  let truncated = false;
  if (Buffer.byteLength(output, "utf8") > maxBytes) {
    output = `${cutToBytes(output, maxBytes)}\n\n... Output truncated at ${maxBytes} bytes.`;
    truncated = true;
  }
  if (exitCode !== 0) output = `${output.trimEnd()}\n\nExit code: ${exitCode}`;
  return { output, exitCode, truncated };
}

/** The longest prefix of `text` within `maxBytes` of UTF-8, not splitting a character. */
export function cutToBytes(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  // Back up over continuation bytes (10xxxxxx) to the start of the character that did not fit.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString("utf8");
}
