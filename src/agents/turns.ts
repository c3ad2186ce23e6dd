// The hosts of one process take turns. An all-in-one cloud runs every host's agents on one
// thread: Node runs all the timers that are due in one phase of its loop and all the queued
// immediates in another, so a thousand hosts' passes woken by one burst ran back to back, tens
// of seconds before the loop turned again. Every reply the server had sent meanwhile waited
// for them all, the agents' calls (report_state among them) timed out by the thousand, and
// each timeout made a full resync: the cloud spent as much again on its retries.
//
// A host's pass and its apply wait for a turn; one waiter goes per turn of the event loop,
// in the order they asked, so what the other hosts and the server have to say goes in between.
// Nothing waits longer in all than before (the same work, in another order); with one host
// (a real one) a turn is the next turn of the loop.

let queue: Array<() => void> = [];
let head = 0;
let pumping = false;

/** Resolves on a turn of the event loop of its own, after those who asked before. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    queue.push(resolve);
    if (!pumping) {
      pumping = true;
      setImmediate(pump);
    }
  });
}

function pump(): void {
  const next = queue[head++];
  if (head === queue.length) {
    queue = [];
    head = 0;
  } else if (head > 1024 && head * 2 > queue.length) {
    queue = queue.slice(head); // drop what went, now and then, not per turn
    head = 0;
  }
  if (queue.length) setImmediate(pump);
  else pumping = false;
  next?.();
}
