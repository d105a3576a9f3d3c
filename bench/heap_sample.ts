import { Session } from 'node:inspector/promises';

/*
 * Bytes allocated per request by allocation site: V8's sampling heap
 * profiler (objects collected by either GC included) around `work`, which
 * serves `requests` requests; each site is the allocating function and
 * its caller, with the top `top` printed (the engine benches' --heap-sample).
 */

interface SampleNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SampleNode[];
}

export async function heapSample(requests: number, work: () => Promise<void>, top: number): Promise<void> {
  const s = new Session();
  s.connect();
  await s.post('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  await work();
  const { profile } = (await s.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: SampleNode } };
  s.disconnect();
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (n: SampleNode, stack: string): void => {
    const f = n.callFrame;
    const here = `${f.functionName || '(anon)'} ${f.url.replace(/^.*\/(lib|node:|fengari)/, '$1')}:${f.lineNumber + 1}`;
    if (n.selfSize > 0) {
      const key = `${here}  <  ${stack}`;
      bySite.set(key, (bySite.get(key) ?? 0) + n.selfSize);
      total += n.selfSize;
    }
    for (const c of n.children) walk(c, here);
  };
  walk(profile.head, '');
  process.stdout.write(`allocated ${(total / requests).toFixed(0)} bytes per request (sampled)\n`);
  for (const [k, v] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${(v / requests).toFixed(0).padStart(7)}  ${k}\n`);
  }
}
