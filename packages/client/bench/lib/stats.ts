/** Median, spread and percentiles of repeated measurements (the machine is shared and noisy). */

export interface Summary {
  median: number
  min: number
  max: number
  /** Every run, in the order they ran. */
  runs: number[]
}

export const round = (value: number, digits = 2) => Number(value.toFixed(digits))

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

export function summarize(values: readonly number[], digits = 1): Summary {
  return {
    median: round(median(values), digits),
    min: round(Math.min(...values), digits),
    max: round(Math.max(...values), digits),
    runs: values.map((value) => round(value, digits)),
  }
}

/** The p-th percentile (nearest rank) of a list of samples. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

export const perSecond = (count: number, ms: number) => Math.round((count / ms) * 1000)

/** Peak resident memory of this process so far, in MB. */
export const peakRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024)
