/**
 * JSON.stringify with 2 spaces, keeping arrays of plain values on one line when they fit in 110
 * columns: the layout biome's formatter gives, so the committed results file stays lint-clean
 * (the same rule as the long soak's results.json).
 */
export function formatJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /^( *)("[^"]*": )?\[\n((?:\1 {2}(?:"(?:[^"\\]|\\.)*"|[-\d.eE+]+|true|false|null),?\n)+)\1\]/gm,
    (whole, indent: string, key: string | undefined, body: string) => {
      const items = body
        .split('\n')
        .map((line) => line.trim().replace(/,$/, ''))
        .filter(Boolean)
      const line = `${indent}${key ?? ''}[${items.join(', ')}]`
      return line.length <= 110 ? line : whole
    },
  )
}
