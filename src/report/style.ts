/** Colours only on a terminal and only when NO_COLOR is unset (https://no-color.org). */
export function makeStyle(stream: NodeJS.WriteStream) {
  const on = Boolean(stream.isTTY) && !process.env.NO_COLOR;
  const wrap = (code: number) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { green: wrap(32), yellow: wrap(33), red: wrap(31), cyan: wrap(36), dim: wrap(2), bold: wrap(1) };
}
export type Style = ReturnType<typeof makeStyle>;
