// The unsaved-changes guard: the connection view registers how many script
// drafts differ from what is saved; navigation and unload ask before losing them.
let count: () => number = () => 0;

export function setUnsaved(fn: () => number) {
  count = fn;
  return () => {
    if (count === fn) count = () => 0;
  };
}

export function hasUnsaved(): boolean {
  return count() > 0;
}
