// The browser side of sgdscape.views.plotly_figures.player: decode the packed grids, draw,
// and drive the step slider and the play button, without any server.
// Expects window.Plotly, and elements #sgdscape-plot, #sgdscape-step, #sgdscape-play,
// #sgdscape-step-label; call sgdscapePlayer(figure, frames, gunzip, fps) with
// gunzip(base64) -> Promise<Uint8Array>. After each shown step, #sgdscape-plot gets
// data-step="<step>". The trace order is plotly_figures.TRACES (then SHARPNESS_TRACES when
// frames.sharpness is given: its marker is moved to each step's λmax), then FAN_TRACES when
// frames.fan is given (plotly_figures._fan_frames: spokes from the iterate to the first
// frames.fan.spokes points, the points (packed as the landscapes are), their mean, the
// full-gradient step, all magnified).
async function sgdscapePlayer(figure, frames, gunzip, fps) {
  const plot = document.getElementById("sgdscape-plot");
  const slider = document.getElementById("sgdscape-step");
  const play = document.getElementById("sgdscape-play");
  const label = document.getElementById("sgdscape-step-label");
  // unpack(encode_log_grids's output) -> (u) => array u as rows of values (null = not finite)
  async function unpack(g) {
    const [count, rows, cols] = g.shape;
    const planes = await gunzip(g.gzip_base64);
    const cell = rows * cols, n = count * cell;
    return function (u) {
      const out = [], lo = g.lo[u], step = (g.hi[u] - g.lo[u]) / 65534;
      for (let r = 0; r < rows; r++) {
        const row = new Array(cols);
        let code = 0;
        for (let c = 0; c < cols; c++) {
          const i = u * cell + r * cols + c;
          code = (code + ((planes[i] << 8) | planes[n + i])) & 0xffff;
          row[c] = code === 65535 ? null : lo + code * step;
        }
        out.push(row);
      }
      return out;
    };
  }
  const g = frames.grids;
  const logGrid = await unpack(g);
  const fanPoints = frames.fan ? await unpack(frames.fan.points) : null;
  const cache = new Map();
  function grid(u) {  // log values and raw values of landscape u, as rows (null = not finite)
    if (cache.has(u)) return cache.get(u);
    const z = logGrid(u);
    const out = {z: z, raw: z.map((row) => row.map((v) => v === null ? null : Math.exp(v)))};
    cache.set(u, out);
    return out;
  }
  const data = figure.data.map((t) => Object.assign({}, t));
  const layout = JSON.parse(JSON.stringify(figure.layout));
  const risk = grid(frames.risk_landscape);
  data[4].z = risk.z; data[4].customdata = risk.raw;
  // arrows come drawn by the arrow rule (sgdscape.views.style.arrow_rule): iterate -> tip, or none
  const arrow = (p, tip) => (tip === null || tip[0] === null || tip[1] === null || p[0] === null || p[1] === null)
    ? [[], []] : [[p[0], tip[0]], [p[1], tip[1]]];
  function levels(u) {  // the step's own colour range (as plotly_figures.contour_range)
    const lo = g.lo[u], hi = g.hi[u] > g.lo[u] ? g.hi[u] : g.lo[u] + 1;
    return {zauto: false, zmin: lo, zmax: hi, autocontour: false,
      contours: Object.assign({}, data[0].contours, {start: lo, end: hi, size: (hi - lo) / frames.contour_levels})};
  }
  let current = -1, pending = null, busy = false;
  async function render(i) {
    const k = frames.steps[i], p = frames.path[k], left = grid(frames.landscape[i]);
    data[0] = Object.assign({}, data[0], {z: left.z, customdata: left.raw}, levels(frames.landscape[i]));
    for (const t of [3, 6]) data[t] = Object.assign({}, data[t], {x: [p[0]], y: [p[1]], text: [frames.point_text[i]]});
    const mb = arrow(p, frames.minibatch_tip[i]);
    data[1] = Object.assign({}, data[1], {x: mb[0], y: mb[1], name: frames.minibatch_label[i]});
    const fg = frames.full_tip === null ? [[], []] : arrow(p, frames.full_tip[i]);
    data[2] = Object.assign({}, data[2], {x: fg[0], y: fg[1]},
      frames.full_label === null ? {} : {name: frames.full_label[i]});
    const soFar = frames.path.slice(0, k + 1);
    data[5] = Object.assign({}, data[5], {x: soFar.map((q) => q[0]), y: soFar.map((q) => q[1])});
    layout.annotations[0].text = frames.left_title[i];
    layout.annotations[1].text = frames.right_title[i];
    layout.title.text = frames.title[i];
    if (frames.sharpness) {  // the sharpness row's marker on this step's λmax of the risk
      const s = frames.sharpness;
      data[s.trace] = Object.assign({}, data[s.trace], {x: [k], y: [s.lambda_max[k]]});
    }
    if (frames.fan) {  // the fan of next steps from this step's iterate, as packed
      const f = frames.fan, t = f.trace, [xs, ys] = fanPoints(i);
      const sx = [], sy = [];
      for (let j = 0; j < Math.min(f.spokes, xs.length); j++) { sx.push(p[0], xs[j], null); sy.push(p[1], ys[j], null); }
      data[t] = Object.assign({}, data[t], {x: sx, y: sy});
      data[t + 1] = Object.assign({}, data[t + 1], {x: xs, y: ys, name: f.label[i]});
      data[t + 2] = Object.assign({}, data[t + 2], {x: [f.mean[i][0]], y: [f.mean[i][1]]});
      data[t + 3] = Object.assign({}, data[t + 3], {x: [p[0], f.full_step[i][0]], y: [p[1], f.full_step[i][1]]});
    }
    layout.datarevision = i;
    await Plotly.react(plot, data, layout);
    current = i;
    label.textContent = "step " + k;
    slider.value = String(i);
    plot.dataset.step = String(k);
  }
  async function show(i) {  // coalesce: while drawing, remember only the latest request
    pending = i;
    if (busy) return;
    busy = true;
    try {
      while (pending !== null) { const j = pending; pending = null; if (j !== current) await render(j); }
    } finally { busy = false; }
  }
  slider.min = "0"; slider.max = String(frames.steps.length - 1); slider.step = "1";
  slider.addEventListener("input", () => { stop(); show(Number(slider.value)); });
  let timer = null;
  function stop() { if (timer !== null) { clearInterval(timer); timer = null; } play.textContent = "▶ play"; }
  function start() {
    if (current >= frames.steps.length - 1) show(0);
    play.textContent = "❚❚ pause";
    timer = setInterval(() => {
      if (busy) return;
      if (current >= frames.steps.length - 1) { stop(); return; }
      show(current + 1);
    }, 1000 / fps);
  }
  play.addEventListener("click", () => { if (timer === null) start(); else stop(); });
  await Plotly.newPlot(plot, data, layout, {displaylogo: false});
  await show(0);
  window.sgdscape = {show: show, frames: frames};
}
