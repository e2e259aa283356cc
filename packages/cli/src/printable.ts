// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * `text` made safe for a terminal: control characters (C0, DEL, C1 — which could move the cursor or change
 * colours when a key or value stored in a registry is printed) become `\xNN` escapes; everything else is kept.
 */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
