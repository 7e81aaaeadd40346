/** A figure measured over several rounds: its median and its spread. */
export interface Spread {
  median: number
  min: number
  max: number
  runs: number[]
}

export function spread(runs: number[]): Spread {
  const sorted = [...runs].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs }
}

/** Per-round ratios a[i] / b[i] (same round, same machine load), as a spread. */
export function ratio(a: number[], b: number[]): Spread {
  return spread(a.map((x, i) => x / b[i]!))
}

const thousands = (n: number) => Math.round(n).toLocaleString('en-US')

/** `123,456 (110,000-130,000)` for rates, `12.3x (10.1-14.0)` for ratios. */
export function show(s: Spread, kind: 'rate' | 'ratio' = 'rate'): string {
  if (kind === 'ratio') return `${s.median.toFixed(2)}x (${s.min.toFixed(2)}-${s.max.toFixed(2)})`
  return `${thousands(s.median)} (${thousands(s.min)}-${thousands(s.max)})`
}

/** The figure as stored in results.json: median and spread, rounded. */
export function stored(
  s: Spread,
  kind: 'rate' | 'ratio' = 'rate',
): { median: number; min: number; max: number } {
  const r = kind === 'ratio' ? (n: number) => Math.round(n * 100) / 100 : Math.round
  return { median: r(s.median), min: r(s.min), max: r(s.max) }
}
