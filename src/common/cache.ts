// A bounded cache of values made once and shared: what the hosts of one process (the emulated
// cloud) hold alike, made by the first that needs it. Emptied whole at its cap: a miss after
// that only costs making the value again.

/** `map`'s value for `key`, made by `make` when absent; the map is emptied first when it holds `max`. */
export function cached<K, V>(map: Map<K, V>, key: K, max: number, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) {
    if (map.size >= max) map.clear();
    map.set(key, (v = make()));
  }
  return v;
}
