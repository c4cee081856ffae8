/**
 * How this package's agent tools answer (history-tools.ts, file-tools.ts): text, and a failure as
 * one line starting with "Error:" rather than a throw, like deepagents' own file tools, so the
 * model can react.
 */

/** Tool output beyond this many characters is cut (a diff of a big rewrite), with a note saying so. */
export const HISTORY_TOOL_OUTPUT_MAX = 20_000;

/** A failure as one line starting with "Error:". */
export const failure = (e: unknown): string => {
  const message = ((e as Error)?.message ?? String(e)).split("\n")[0];
  return message.startsWith("Error:") ? message : `Error: ${message}`;
};

/** Runs a tool body; a thrown error becomes the one-line answer the model sees. */
export const answer = async (body: () => Promise<string>): Promise<string> => {
  try {
    const text = await body();
    return text.length <= HISTORY_TOOL_OUTPUT_MAX
      ? text
      : `${text.slice(0, HISTORY_TOOL_OUTPUT_MAX)}\n... (output cut at ${HISTORY_TOOL_OUTPUT_MAX} characters; narrow it with paths)`;
  } catch (e) {
    return failure(e);
  }
};
