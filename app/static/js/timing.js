// Coalescing refreshes: a burst of live events asks for one reload, not one per event.

/**
 * A function that runs `task` (may be async) `delayMs` after it is first called; calls in
 * between are merged. A call while the task runs schedules one more run after it.
 * `.cancel()` drops what is pending (when a view goes away).
 */
export function coalesce(task, delayMs) {
  let timer = null;
  let running = false;
  let again = false;
  let cancelled = false;
  const fire = async () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await task();
    } catch (err) {
      report(err);
    } finally {
      running = false;
      if (again && !cancelled) {
        again = false;
        request();
      }
    }
  };
  function request() {
    if (cancelled) return;
    if (running) again = true;
    else if (timer === null) timer = setTimeout(fire, delayMs);
  }
  request.cancel = () => {
    cancelled = true;
    clearTimeout(timer);
    timer = null;
  };
  return request;
}

/** A repeating timer that can be stopped; `task` errors are logged, not thrown. */
export function every(task, periodMs) {
  const id = setInterval(() => {
    Promise.resolve().then(task).catch(report);
  }, periodMs);
  return () => clearInterval(id);
}

// a refused or failed API call is shown by the view that made it: only logged here
function report(err) {
  if (err && err.status !== undefined) console.warn(err.message);
  else console.error(err);
}
