/**
 * Runs tasks one after another, each after the previous one settled (a failed task does not stop
 * the queue). Two users: the cross-tab lease lock queues the callers of one tab, and the sync
 * engine applies every server answer and every push through one queue, so the answer to a push is
 * always applied before a live change or a pulled page that already contains the pushed change
 * (counters would otherwise count it twice; the one exception, a push still unanswered after its
 * timeout, is described in `sync/push-loop.ts`).
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve()

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task)
    this.tail = result.catch(() => {})
    return result
  }
}
