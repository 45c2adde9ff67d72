/**
 * The availability chart of a chaos run: one lane per endpoint (node, or the load balancer),
 * acknowledged and failed operations per second over time, with the fault windows shaded and
 * labelled across all lanes. Plain SVG, no dependencies, viewable in any browser.
 */

/** One operation as the chart needs it. */
export interface ChartOp {
  endpoint: number;
  /** ms from the start of the run */
  invokeTime: number;
  /** Completion minus invocation, ms. */
  latencyMs: number;
  ok: boolean;
}

/** One executed fault window. */
export interface ChartFault {
  label: string;
  startMs: number;
  endMs: number;
}

const LANE_PX = 90;
const WIDTH_PX = 1000;
const LEFT_PX = 70;
const TOP_PX = 40;

/** Renders the chart; `endpoints` names the lanes (id → label). */
export function availabilitySvg(title: string, endpoints: Map<number, string>, ops: readonly ChartOp[], faults: readonly ChartFault[], durationMs: number): string {
  const seconds = Math.max(1, Math.ceil(durationMs / 1000));
  const lanes = [...endpoints.keys()];
  const counts = new Map(
    lanes.map((id) => [id, { ok: new Array<number>(seconds).fill(0), err: new Array<number>(seconds).fill(0), lat: Array.from({ length: seconds }, () => [] as number[]) }]),
  );
  for (const op of ops) {
    const lane = counts.get(op.endpoint);
    const s = Math.min(seconds - 1, Math.max(0, Math.floor(op.invokeTime / 1000)));
    if (!lane) continue;
    (op.ok ? lane.ok : lane.err)[s]!++;
    lane.lat[s]!.push(op.latencyMs);
  }
  // Median latency per second; the scale is shared by all lanes.
  const medians = new Map([...counts].map(([id, c]) => [id, c.lat.map((l) => (l.length === 0 ? 0 : l.sort((a, b) => a - b)[Math.floor(l.length / 2)]!))]));
  let latMax = 1;
  for (const m of medians.values()) for (const v of m) latMax = Math.max(latMax, v);
  let max = 1;
  for (const c of counts.values()) for (const v of [...c.ok, ...c.err]) max = Math.max(max, v);
  const plotW = WIDTH_PX - LEFT_PX - 20;
  const x = (ms: number) => LEFT_PX + (ms / (seconds * 1000)) * plotW;
  const height = TOP_PX + lanes.length * LANE_PX + 40;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH_PX}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<title>${esc(`Availability over time: ${title}`)}</title>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${LEFT_PX}" y="16" font-size="13">${esc(title)}</text>`,
    `<text x="${LEFT_PX}" y="30" fill="#2a7">■ acknowledged/s</text><text x="${LEFT_PX + 120}" y="30" fill="#c33">■ failed or indeterminate/s</text><text x="${LEFT_PX + 290}" y="30" fill="#36c">— median latency (max ${Math.round(latMax)} ms)</text><text x="${LEFT_PX + 480}" y="30" fill="#888">■ fault</text>`,
  ];
  for (const f of faults) {
    const x0 = x(f.startMs);
    const x1 = Math.max(x0 + 1, x(f.endMs));
    out.push(`<rect x="${x0.toFixed(1)}" y="${TOP_PX}" width="${(x1 - x0).toFixed(1)}" height="${lanes.length * LANE_PX}" fill="#888" fill-opacity="0.18"/>`);
    out.push(`<text x="${(x0 + 2).toFixed(1)}" y="${TOP_PX + lanes.length * LANE_PX + 12}" fill="#555" font-size="9">${esc(f.label)}</text>`);
  }
  lanes.forEach((id, i) => {
    const top = TOP_PX + i * LANE_PX;
    const base = top + LANE_PX - 8;
    const y = (v: number) => base - (v / max) * (LANE_PX - 20);
    const c = counts.get(id)!;
    out.push(`<line x1="${LEFT_PX}" y1="${base}" x2="${LEFT_PX + plotW}" y2="${base}" stroke="#ccc"/>`);
    out.push(`<text x="4" y="${top + LANE_PX / 2}">${esc(endpoints.get(id) ?? String(id))}</text>`);
    out.push(`<text x="${LEFT_PX - 4}" y="${y(max) + 4}" text-anchor="end" fill="#999">${max}</text>`);
    for (const [series, color] of [
      [c.ok, '#2a7'],
      [c.err, '#c33'],
    ] as const) {
      const pts = series.map((v, s) => `${x(s * 1000 + 500).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts}"/>`);
    }
    const lat = (medians.get(id) ?? []).map((v, s) => `${x(s * 1000 + 500).toFixed(1)},${(base - (v / latMax) * (LANE_PX - 20)).toFixed(1)}`).join(' ');
    out.push(`<polyline fill="none" stroke="#36c" stroke-width="1" stroke-dasharray="3,2" points="${lat}"/>`);
  });
  for (let s = 0; s <= seconds; s += Math.max(1, Math.ceil(seconds / 20))) {
    out.push(`<text x="${x(s * 1000).toFixed(1)}" y="${height - 6}" text-anchor="middle" fill="#666">${s}s</text>`);
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function esc(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] ?? c);
}

/** The availability of a run as data: per endpoint and second, answered and failed ops and latencies; the fault windows. */
export interface AvailabilityJson {
  durationMs: number;
  faults: ChartFault[];
  endpoints: Array<{
    id: number;
    label: string;
    /** Share of ops answered (acknowledged or a correct refusal) over the run. */
    availability: number;
    /** Share answered outside any fault window, and inside them. */
    availabilityOutsideFaults: number;
    availabilityInFaults: number;
    /** One row per second: [second, ok, failed, p50 latency ms, max latency ms]. */
    seconds: Array<[number, number, number, number, number]>;
  }>;
}

/** The JSON twin of availabilitySvg (availability.json next to the chart). */
export function availabilityJson(endpoints: Map<number, string>, ops: readonly ChartOp[], faults: readonly ChartFault[], durationMs: number): AvailabilityJson {
  const seconds = Math.max(1, Math.ceil(durationMs / 1000));
  const inFault = (t: number) => faults.some((f) => t >= f.startMs && t <= f.endMs);
  const share = (list: readonly ChartOp[]) => (list.length === 0 ? 1 : Math.round((list.filter((o) => o.ok).length / list.length) * 10_000) / 10_000);
  return {
    durationMs: Math.round(durationMs),
    faults: faults.map((f) => ({ label: f.label, startMs: Math.round(f.startMs), endMs: Math.round(f.endMs) })),
    endpoints: [...endpoints].map(([id, label]) => {
      const mine = ops.filter((o) => o.endpoint === id);
      const rows: Array<[number, number, number, number, number]> = [];
      for (let s = 0; s < seconds; s++) {
        const at = mine.filter((o) => Math.min(seconds - 1, Math.max(0, Math.floor(o.invokeTime / 1000))) === s);
        if (at.length === 0) continue;
        const lat = at.map((o) => o.latencyMs).sort((a, b) => a - b);
        rows.push([s, at.filter((o) => o.ok).length, at.filter((o) => !o.ok).length, Math.round(lat[Math.floor(lat.length / 2)]!), Math.round(lat.at(-1)!)]);
      }
      return {
        id,
        label,
        availability: share(mine),
        availabilityOutsideFaults: share(mine.filter((o) => !inFault(o.invokeTime))),
        availabilityInFaults: share(mine.filter((o) => inFault(o.invokeTime))),
        seconds: rows,
      };
    }),
  };
}
