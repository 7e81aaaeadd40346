/** A figure over the benchmark's runs: its median and its spread. */
export interface Spread {
  median: number
  min: number
  max: number
  runs: number[]
}

/** Rounds to 0.1 (ms figures) so the results file stays readable. */
export function round(value: number): number {
  return Math.round(value * 10) / 10
}

/** Median (the lower middle value for an even count), min, max and every run's value, rounded. */
export function spread(values: number[]): Spread {
  if (values.length === 0) throw new Error('spread() of no values')
  const sorted = [...values].sort((a, b) => a - b)
  return {
    median: round(sorted[Math.floor((sorted.length - 1) / 2)]!),
    min: round(sorted[0]!),
    max: round(sorted[sorted.length - 1]!),
    runs: values.map(round),
  }
}
