import { BehaviorSubject, distinctUntilChanged, type Observable } from 'rxjs'
import type { SyncStatus } from './types.js'

function same(a: SyncStatus, b: SyncStatus): boolean {
  return (
    a.online === b.online &&
    a.syncing === b.syncing &&
    a.pending === b.pending &&
    a.progress === b.progress &&
    a.lastSyncedAt === b.lastSyncedAt &&
    a.error === b.error
  )
}

/** Holds the client's status and emits it when something changed. @internal */
export class StatusStore {
  private readonly subject = new BehaviorSubject<SyncStatus>({
    online: false,
    syncing: false,
    pending: 0,
    progress: null,
    lastSyncedAt: null,
    error: null,
  })

  readonly status$: Observable<SyncStatus> = this.subject.pipe(distinctUntilChanged(same))

  get value(): SyncStatus {
    return this.subject.value
  }

  patch(changes: Partial<SyncStatus>): void {
    const next = { ...this.subject.value, ...changes }
    if (!same(next, this.subject.value)) this.subject.next(next)
  }

  complete(): void {
    this.subject.complete()
  }
}
