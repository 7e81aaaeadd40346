/**
 * Runs tasks one after another. The sync engine applies every server answer and every push
 * through one queue, so the answer to a push is always applied before a live change or a pulled
 * page that already contains the pushed change (counters would otherwise count it twice). The
 * one exception: a push still unanswered after its timeout frees the queue until its answer
 * comes (see `pushOutbox`).
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve()

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task)
    this.tail = result.catch(() => {})
    return result
  }
}
