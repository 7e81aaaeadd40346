/**
 * The benchmark's probe, installed in every page before the app's own scripts
 * (`context.addInitScript`). Plain browser JavaScript, so that no build step (nor tsx's helpers)
 * stands between it and the page. Every time is `performance.now()`: milliseconds since the
 * navigation started.
 *
 * It records:
 * - when the first note card is in the DOM, and the frame after that (`firstNotePainted`: the
 *   card has been laid out and painted by then: "the first screen");
 * - every main-thread task over 50 ms (`longtask`) and every animation frame over 50 ms with
 *   the scripts that ran in it (`long-animation-frame`, Chromium 123+): what held the thread;
 * - `scrollThrough(step, timeoutMs)`: scrolls the notes list from top to bottom by `step` pixels
 *   per animation frame, and measures the frames while it does.
 *
 * The observers cost the page nothing measurable: the browser records the entries itself, and the
 * DOM watch stops at the first note.
 */
;(() => {
  const probe = {
    firstNoteInDom: null,
    firstNotePainted: null,
    syncDone: null,
    longTasks: [],
    longFrames: [],
    longTaskSupported: false,
    scrollThrough: null,
  }
  window.__demoBench = probe

  const supported = (type) => PerformanceObserver.supportedEntryTypes?.includes(type) ?? false
  probe.longTaskSupported = supported('longtask')
  if (probe.longTaskSupported) {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) probe.longTasks.push({ at: entry.startTime, ms: entry.duration })
    }).observe({ type: 'longtask', buffered: true })
  }
  if (supported('long-animation-frame')) {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        probe.longFrames.push({
          at: entry.startTime,
          ms: entry.duration,
          blockingMs: entry.blockingDuration,
          scripts: entry.scripts
            .map((script) => ({
              invoker: script.invoker || script.invokerType,
              source: `${script.sourceFunctionName || '(anonymous)'}@${(script.sourceURL || '').split('/').pop()}:${script.sourceCharPosition}`,
              ms: script.duration,
            }))
            .sort((a, b) => b.ms - a.ms)
            .slice(0, 3),
        })
      }
    }).observe({ type: 'long-animation-frame', buffered: true })
  }

  const firstNote = () => {
    if (!document.querySelector('[data-testid="note"]')) return false
    probe.firstNoteInDom = performance.now()
    requestAnimationFrame(() =>
      setTimeout(() => {
        probe.firstNotePainted = performance.now()
      }, 0),
    )
    return true
  }
  const watch = new MutationObserver(() => {
    if (firstNote()) watch.disconnect()
  })
  watch.observe(document, { childList: true, subtree: true })

  probe.scrollThrough = (step, timeoutMs) =>
    new Promise((resolve) => {
      const scroller = document.querySelector('[data-testid="note-scroller"]')
      if (!scroller) {
        resolve(null)
        return
      }
      scroller.scrollTop = 0
      const started = performance.now()
      const gaps = []
      let last = null
      let waitingFrames = 0
      let timedOut = false
      const finish = () => {
        // One more frame and task, so that a task that just ended is reported.
        requestAnimationFrame(() =>
          setTimeout(() => {
            const ended = performance.now()
            const sorted = [...gaps].sort((a, b) => a - b)
            const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0
            const tasks = probe.longTasks.filter((task) => task.at >= started)
            const cards = document.querySelectorAll('[data-testid="note"]')
            const lastCard = cards[cards.length - 1]
            resolve({
              ms: ended - started,
              frames: gaps.length,
              longestFrameMs: sorted[sorted.length - 1] ?? 0,
              p95FrameMs: at(0.95),
              p99FrameMs: at(0.99),
              medianFrameMs: at(0.5),
              framesOver50: gaps.filter((gap) => gap > 50).length,
              waitingFrames,
              longestTaskMs: tasks.reduce((max, task) => Math.max(max, task.ms), 0),
              longTasks: tasks.length,
              longFrames: probe.longFrames
                .filter((frame) => frame.at >= started)
                .sort((a, b) => b.ms - a.ms)
                .slice(0, 3),
              scrolledPx: scroller.scrollTop,
              cardsInDom: cards.length,
              lastTitle: lastCard?.querySelector('[data-testid="note-title"]')?.value ?? null,
              timedOut,
            })
          }, 0),
        )
      }
      const onFrame = (now) => {
        if (last !== null) gaps.push(now - last)
        last = now
        const atEnd = scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 2
        if (atEnd && scroller.dataset.complete === 'true') {
          finish()
          return
        }
        if (now - started > timeoutMs) {
          timedOut = true
          finish()
          return
        }
        // At the bottom of what is loaded: the list is fetching the next notes.
        if (atEnd) waitingFrames++
        scroller.scrollTop += step
        requestAnimationFrame(onFrame)
      }
      requestAnimationFrame(onFrame)
    })
})()
