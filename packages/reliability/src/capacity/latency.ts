/** Latency samples (ms) and their summary. */
export interface LatencySummary {
  count: number
  p50: number
  p90: number
  p99: number
  max: number
}

/** A growing list of latencies in ms (a Float64Array doubled when full: millions stay cheap). */
export class Latencies {
  private values = new Float64Array(1024)
  private size = 0

  add(ms: number): void {
    if (this.size === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2)
      bigger.set(this.values)
      this.values = bigger
    }
    this.values[this.size++] = ms
  }

  get count(): number {
    return this.size
  }

  summary(): LatencySummary {
    if (this.size === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0 }
    const sorted = this.values.slice(0, this.size).sort()
    const at = (q: number) => round(sorted[Math.min(this.size - 1, Math.ceil(q * this.size) - 1)]!)
    return { count: this.size, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: round(sorted[this.size - 1]!) }
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10
}
