/* narratives report: draws the data in #report-data. Text from the data reaches the page
 * only as text nodes (textContent) or, in Plotly labels, through plotlyText(): Plotly
 * reads a few HTML tags in labels, so &, < and > go in as entities. Never innerHTML. */
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('report-data').textContent);
  var root = document.getElementById('report');
  var LANG = D.colors.languages;
  var NARR = D.colors.narratives;
  var CONFIG = {displaylogo: false, responsive: true, showLink: false,
    modeBarButtonsToRemove: ['select2d', 'lasso2d']};
  var pending = [];
  var REGIME_COLORS = ['#9e9e9e', '#d62728', '#1f77b4', '#2ca02c', '#9467bd'];

  function plotlyText(s) {
    return String(s === null || s === undefined ? '' : s)
      .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function add(parent, child) { parent.appendChild(child); return child; }
  function fmt(n) { return Number(n).toLocaleString('en-US'); }
  function pct(x) { return Math.round(100 * x) + '%'; }
  function langColor(l) { return LANG[l] || '#999999'; }
  function narrColor(id) { return NARR[id] || '#999999'; }
  function chart(parent, cls, traces, layout) {
    var div = add(parent, el('div', 'chart ' + cls));
    layout.margin = layout.margin || {l: 60, r: 20, t: 40, b: 40};
    layout.font = {family: 'system-ui, sans-serif', size: 12};
    layout.paper_bgcolor = '#ffffff';
    layout.plot_bgcolor = '#fafafa';
    pending.push([div, traces, layout]);
    return div;
  }

  function header() {
    var h = add(root, el('header'));
    add(h, el('h1', null, D.title));
    var meta = add(h, el('p', 'meta'));
    var bits = [['input', D.source], ['scored', D.created], ['model', D.model],
      ['taxonomy', D.taxonomy]];
    bits.forEach(function (b) {
      if (!b[1]) return;
      var s = add(meta, el('span', 'bit'));
      add(s, el('b', null, b[0] + ' '));
      add(s, document.createTextNode(b[1]));
    });
  }

  function sinceUpdate() {
    var u = D.since_update;
    if (!u) return;
    var sec = add(root, el('section'));
    sec.id = 'since-update';
    add(sec, el('h2', null, 'Since the last update (update ' + u.update + ', ' + u.created + ')'));
    var c = u.counts;
    var note = fmt(c.read) + ' posts read, ' + fmt(c.ok) + ' scored, ' + fmt(c.rejected) +
      ' rejected; ' + fmt(u.pages_touched) + ' pages received posts.';
    if (u.coordination) {
      note += ' Coordination: ' + u.coordination.clusters_new + ' new clusters, ' +
        u.coordination.clusters_grown + ' grown; ' + u.coordination.links_new +
        ' new page links, ' + u.coordination.links_grown + ' heavier.';
    }
    add(sec, el('p', 'note', note));
    function table(heads, rows) {
      var t = add(sec, el('table', 'small'));
      var head = add(add(t, el('thead')), el('tr'));
      heads.forEach(function (h) { add(head, el('th', null, h)); });
      var body = add(t, el('tbody'));
      rows.forEach(function (r) {
        var tr = add(body, el('tr'));
        r.forEach(function (v) { add(tr, el('td', null, v === null ? '' : v)); });
      });
    }
    if (u.pivots.length) {
      add(sec, el('h3', null, 'Pivots'));
      table(['', 'page', 'at', 'kind', 'languages', 'posts after', ''], u.pivots);
    } else {
      add(sec, el('p', 'meta', 'No pivot found, moved or withdrawn.'));
    }
    if (u.timing.length) {
      add(sec, el('h3', null, 'Timing estimates moved by more than an hour'));
      table(['page', 'UTC offset before', 'now'], u.timing);
    }
    if (u.narratives.length) {
      add(sec, el('h3', null, 'Narratives that rose'));
      table(['narrative', 'share of the new posts', 'share before'], u.narratives.map(
        function (n) { return [n[0], pct(n[1] || 0), pct(n[2] || 0)]; }));
    }
  }

  function overview() {
    var sec = add(root, el('section'));
    sec.id = 'overview';
    add(sec, el('h2', null, 'Overview'));
    var cards = add(sec, el('div', 'cards'));
    var c = D.counts;
    [['posts read', c.posts], ['scored', c.ok], ['rejected', c.rejected], ['pages', c.pages],
      ['languages', c.languages], ['pivots', c.pivots], ['with a narrative', c.tagged]]
      .forEach(function (x) {
        var card = add(cards, el('div', 'card'));
        add(card, el('div', 'num', fmt(x[1])));
        add(card, el('div', 'label', x[0]));
      });
    var langs = add(sec, el('p', 'langs'));
    add(langs, el('b', null, 'Languages: '));
    D.languages.forEach(function (l) {
      var chip = add(langs, el('span', 'chip', l[0] + ' ' + fmt(l[1])));
      chip.style.borderColor = langColor(l[0]);
    });
    if (D.rejections.length) {
      add(sec, el('h3', null, 'Rejected rows, by reason'));
      var t = add(sec, el('table', 'small'));
      var head = add(add(t, el('thead')), el('tr'));
      add(head, el('th', null, 'rows'));
      add(head, el('th', null, 'reason'));
      var body = add(t, el('tbody'));
      D.rejections.forEach(function (r) {
        var tr = add(body, el('tr'));
        add(tr, el('td', 'num', fmt(r[1])));
        add(tr, el('td', null, r[0]));
      });
    }
    if (D.pivots.length) {
      var top = D.pivots.slice(0, 30);
      add(sec, el('h3', null, 'Pivots by magnitude' +
        (D.pivots.length > top.length ? ' (largest ' + top.length + ' of ' +
          fmt(D.pivots.length) + ')' : '')));
      var seen = {};
      var labels = top.map(function (p, i) {
        var label = p.page_id + ' · ' + p.at;
        if (seen[label]) label += ' #' + i;
        seen[label] = true;
        return plotlyText(label);
      });
      var kinds = ['topic', 'language', 'topic+language'];
      var kindColor = {'topic': '#1f77b4', 'language': '#2ca02c', 'topic+language': '#d62728'};
      var traces = kinds.map(function (k) {
        var idx = [];
        top.forEach(function (p, i) { if (p.kind === k) idx.push(i); });
        return {type: 'bar', orientation: 'h', name: k, marker: {color: kindColor[k]},
          y: idx.map(function (i) { return labels[i]; }),
          x: idx.map(function (i) { return top[i].magnitude; }),
          hovertext: idx.map(function (i) {
            var p = top[i];
            return plotlyText(p.page_id) + '<br>' + plotlyText(p.at) + ' ' + plotlyText(k) +
              '<br>' + plotlyText(p.before_lang) + ' → ' + plotlyText(p.after_lang) +
              (p.dormancy_days !== null ? '<br>dormant ' + p.dormancy_days + ' days before' : '');
          }),
          hoverinfo: 'text'};
      }).filter(function (t) { return t.x.length; });
      chart(sec, 'pivot-chart', traces, {
        height: 120 + 22 * top.length, barmode: 'overlay',
        xaxis: {title: {text: 'magnitude'}, range: [0, 1]},
        yaxis: {autorange: 'reversed', automargin: true, type: 'category',
          categoryorder: 'array', categoryarray: labels},
        margin: {l: 20, r: 20, t: 20, b: 40}, legend: {orientation: 'h', y: -0.15}});
    }
  }

  var COLUMNS = [
    ['Page', 'text'], ['Posts', 'num'], ['First post', 'text'], ['Last post', 'text'],
    ['Languages', 'text'], ['Pivots', 'num'], ['Largest pivot', 'num'],
    ['Top narratives', 'text'], ['Pivot status', 'text']];

  function pageTable() {
    var sec = add(root, el('section'));
    sec.id = 'pages-table';
    add(sec, el('h2', null, 'Pages'));
    add(sec, el('p', 'note', 'Ranked by their largest pivot, then by posts. ' +
      (D.table_total > D.table.length ? 'The first ' + fmt(D.table.length) + ' of ' +
        fmt(D.table_total) + ' pages are listed. ' : '') +
      'Click a heading to sort; pages drawn below link to their section.'));
    var tools = add(sec, el('div', 'tools'));
    var filter = add(tools, el('input'));
    filter.type = 'search';
    filter.placeholder = 'filter pages (any column)';
    filter.id = 'page-filter';
    var label = add(tools, el('label'));
    var only = add(label, el('input'));
    only.type = 'checkbox';
    only.id = 'only-pivots';
    add(label, document.createTextNode(' pages with pivots only'));
    var shown = add(tools, el('span', 'count'));
    var table = add(sec, el('table', 'pages'));
    table.id = 'page-table';
    var head = add(add(table, el('thead')), el('tr'));
    var body = add(table, el('tbody'));
    var rows = D.table.map(function (r) {
      var tr = el('tr');
      r.slice(0, COLUMNS.length).forEach(function (v, i) {
        var td = add(tr, el('td', COLUMNS[i][1] === 'num' ? 'num' : null));
        if (i === 0 && r[9] !== null) {
          var a = add(td, el('a', null, v));
          a.href = '#page-' + Number(r[9]);
        } else {
          td.textContent = v === null ? '' : String(v);
        }
      });
      tr._values = r;
      tr._text = r.slice(0, COLUMNS.length).join(' ').toLowerCase();
      body.appendChild(tr);
      return tr;
    });
    var order = {col: -1, dir: 1};
    COLUMNS.forEach(function (c, i) {
      var th = add(head, el('th', c[1] === 'num' ? 'num' : null, c[0]));
      th.tabIndex = 0;
      th.addEventListener('click', function () {
        order.dir = order.col === i ? -order.dir : (c[1] === 'num' ? -1 : 1);
        order.col = i;
        rows.slice().sort(function (a, b) {
          var x = a._values[i], y = b._values[i];
          if (x === null && y === null) return 0;
          if (x === null) return 1;
          if (y === null) return -1;
          var d = c[1] === 'num' ? x - y : String(x).localeCompare(String(y));
          return d * order.dir;
        }).forEach(function (tr) { body.appendChild(tr); });
        Array.prototype.forEach.call(head.children, function (h, j) {
          h.setAttribute('aria-sort', j === i ? (order.dir > 0 ? 'ascending' : 'descending')
            : 'none');
        });
      });
    });
    function apply() {
      var q = filter.value.toLowerCase();
      var n = 0;
      rows.forEach(function (tr) {
        var ok = (!q || tr._text.indexOf(q) >= 0) && (!only.checked || tr._values[5] > 0);
        tr.hidden = !ok;
        if (ok) n += 1;
      });
      shown.textContent = fmt(n) + ' of ' + fmt(rows.length) + ' shown';
    }
    filter.addEventListener('input', apply);
    only.addEventListener('change', apply);
    apply();
  }

  function mixOverTime() {
    var mix = D.mix;
    var sec = add(root, el('section'));
    sec.id = 'mix';
    add(sec, el('h2', null, 'Narratives over time, by language'));
    if (!mix.languages.length) {
      add(sec, el('p', 'note', 'No scored post has a time.'));
      return;
    }
    add(sec, el('p', 'note', 'Posts per ' + mix.bucket + ' whose top narrative is shown, ' +
      'for the ' + (mix.languages.length) + ' most frequent languages (the rest as "other"); ' +
      'the grey line counts all posts in that language.'));
    var n = mix.languages.length, gap = 0.06, h = (1 - gap * (n - 1)) / n;
    var traces = [], annotations = [], layout = {barmode: 'stack', height: 80 + 170 * n,
      showlegend: true, legend: {orientation: 'h', y: -0.08}, margin: {l: 60, r: 20, t: 30, b: 40},
      xaxis: {type: 'date', anchor: 'y' + n}};
    var legend = {};
    mix.languages.forEach(function (l, i) {
      var axis = i === 0 ? 'y' : 'y' + (i + 1);
      var top = 1 - i * (h + gap);
      layout[i === 0 ? 'yaxis' : 'yaxis' + (i + 1)] = {domain: [top - h, top], rangemode: 'tozero',
        title: {text: plotlyText(l.lang)}};
      annotations.push({text: plotlyText(l.lang + ': ' + fmt(l.posts) + ' posts, ' +
        fmt(l.tagged) + ' with a narrative'), xref: 'paper', yref: 'paper', x: 0, y: top,
        xanchor: 'left', yanchor: 'bottom', showarrow: false});
      traces.push({type: 'scatter', mode: 'lines', x: l.buckets, y: l.totals, yaxis: axis,
        name: 'all posts', legendgroup: 'all', showlegend: i === 0,
        line: {color: '#aaaaaa', width: 1}, hovertemplate: '%{y} posts<extra></extra>'});
      l.series.forEach(function (s) {
        traces.push({type: 'bar', x: s.x, y: s.y, yaxis: axis, name: plotlyText(s.name),
          legendgroup: s.id, showlegend: !legend[s.id], marker: {color: narrColor(s.id)},
          hovertemplate: plotlyText(s.name) + ': %{y}<extra>' + plotlyText(l.lang) + '</extra>'});
        legend[s.id] = true;
      });
    });
    layout.annotations = annotations;
    chart(sec, 'mix-chart', traces, layout);
  }

  var WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

  function timingLine(t) {
    if (!t) return '';
    if (t.utc_offset_hours === null) {
      return 'Posting hours in UTC: ' + t.status + ' to infer a working schedule.';
    }
    var off = t.utc_offset_hours;
    return 'Posting hours in the inferred local time, UTC' + (off >= 0 ? '+' : '') + off +
      ' (confidence ' + t.confidence + '): works ' + t.work_start + '-' + t.work_end +
      ', breaks ' + (t.breaks && t.breaks.length ? t.breaks.join(', ') : 'none found') + '.';
  }

  function heatmap(parent, t, height) {
    add(parent, el('p', 'meta', timingLine(t)));
    var hours = [];
    for (var h = 0; h < 24; h += 1) hours.push((h < 10 ? '0' : '') + h + ':00');
    chart(parent, 'timing-chart', [{type: 'heatmap', z: t.hours, x: hours, y: WEEKDAYS,
      colorscale: [[0, '#f7fbff'], [0.5, '#6baed6'], [1, '#08306b']], hovertemplate: '%{y} %{x}: %{z} posts<extra></extra>',
      colorbar: {title: {text: 'posts'}, thickness: 12}}], {
      height: height, xaxis: {title: {text: t.utc_offset_hours === null ? 'hour (UTC)' :
        'hour (local)'}}, yaxis: {autorange: 'reversed'}, margin: {l: 50, r: 20, t: 10, b: 40}});
  }

  function timingSection() {
    if (!D.timing) return;
    var sec = add(root, el('section'));
    sec.id = 'timing';
    add(sec, el('h2', null, 'Operator timing, all pages'));
    add(sec, el('p', 'note', 'Posts per weekday and hour. The UTC offset is the one under ' +
      'which the posts best fit a generic working week (office hours, a lunch break, ' +
      'quiet nights and weekends); narratives timing writes it per page. Pages that post ' +
      'round the clock, or by scheduler, have no meaningful offset: read the confidence.'));
    heatmap(sec, D.timing, 260);
  }

  function coordinationSection() {
    var c = D.coordination;
    if (!c) return;
    var sec = add(root, el('section'));
    sec.id = 'coordination';
    add(sec, el('h2', null, 'Coordination'));
    add(sec, el('p', 'note', fmt(c.clusters) + ' clusters of posts by different pages ' +
      'carrying the same message within minutes (copied, edited or translated), ' +
      fmt(c.posts) + ' posts in them; ' + fmt(c.pairs_total) + ' page pairs share two ' +
      'or more (narratives coordination).'));
    if (c.pairs.length) {
      var t = add(sec, el('table', 'small'));
      var head = add(add(t, el('thead')), el('tr'));
      ['page', 'page', 'shared clusters', 'first', 'last'].forEach(function (h) {
        add(head, el('th', null, h));
      });
      var body = add(t, el('tbody'));
      c.pairs.forEach(function (r) {
        var tr = add(body, el('tr'));
        r.forEach(function (v, i) { add(tr, el('td', i === 2 ? 'num' : null, v)); });
      });
    }
    c.groups.forEach(function (g) {
      add(sec, el('h3', null, 'Group ' + g.name + ': ' + g.pages.length + ' pages'));
      add(sec, el('p', 'meta', g.pages.join(', ')));
      heatmap(sec, g.timing, 220);
    });
    var box = add(sec, el('div', 'examples'));
    c.examples.forEach(function (cluster) {
      var col = add(box, el('div', 'side'));
      add(col, el('h4', null, 'cluster ' + cluster.cluster_id));
      var list = add(col, el('ul'));
      cluster.posts.forEach(function (post) { postItem(list, post, post.page_id); });
    });
  }

  function pageSection(parent, p) {
    var sec = add(parent, el('section', 'page'));
    sec.id = 'page-' + Number(p.index);
    add(sec, el('h3', null, p.page_id));
    if (!p.n) {
      add(sec, el('p', 'note', 'No scored post with a time: nothing to draw.'));
      return;
    }
    var note = fmt(p.n) + ' posts' + (p.shown < p.n ? ', ' + fmt(p.shown) +
      ' drawn (evenly spaced; the posts each side of a pivot are kept)' : '') +
      '. ' + (p.pivots.length ? p.pivots.length + ' pivot' + (p.pivots.length > 1 ? 's' : '') +
      ': ' + p.pivots.map(function (v) {
        return v.kind + ' at ' + v.at + ' (magnitude ' + v.magnitude +
          (v.dormancy_days >= 1 ? ', after ' + v.dormancy_days + ' days without a post' : '') +
          ')';
      }).join('; ') : 'No pivot.');
    add(sec, el('p', 'meta', note));
    timeline(sec, p);
    regimes(sec, p);
    if (p.timing) heatmap(sec, p.timing, 220);
    examples(sec, p);
  }

  function timeline(sec, p) {
    var langs = [];
    p.lang.forEach(function (l) { if (langs.indexOf(l) < 0) langs.push(l); });
    var hover = p.t.map(function (t, i) {
      return plotlyText(t) + ' · ' + plotlyText(p.lang[i]) +
        (p.narrative[i] ? ' · ' + plotlyText(D.narratives[p.narrative[i]] || p.narrative[i]) : '') +
        '<br>' + plotlyText(p.text[i]) + '<br>distance ' + p.drift[i];
    });
    var line = {x: [], y: []};
    p.t.forEach(function (t, i) {
      if (p.breaks.indexOf(i) >= 0) { line.x.push(null); line.y.push(null); }
      line.x.push(t);
      line.y.push(p.smooth[i]);
    });
    var traces = [
      {type: 'scatter', mode: 'markers', x: p.t, y: p.drift, name: 'posts', showlegend: false,
        marker: {size: 5, opacity: 0.55, color: p.lang.map(langColor)},
        hovertext: hover, hoverinfo: 'text'},
      {type: 'scatter', mode: 'lines', x: line.x, y: line.y, hoverinfo: 'skip',
        name: 'rolling mean (' + p.window + ' posts)', line: {color: '#222222', width: 2}}];
    langs.forEach(function (l) {
      var x = [];
      p.t.forEach(function (t, i) { if (p.lang[i] === l) x.push(t); });
      traces.push({type: 'scatter', mode: 'markers', x: x, y: x.map(function () { return 0; }),
        yaxis: 'y2', name: plotlyText(l), legendgroup: 'lang',
        marker: {symbol: 'line-ns-open', size: 16, color: langColor(l),
          line: {width: 3, color: langColor(l)}},
        hovertemplate: '%{x}<extra>' + plotlyText(l) + '</extra>'});
    });
    var shapes = [], annotations = [];
    p.pivots.forEach(function (v) {
      shapes.push({type: 'line', xref: 'x', yref: 'paper', x0: v.at, x1: v.at, y0: 0, y1: 1,
        line: {color: '#d62728', width: 2, dash: 'dash'}});
      annotations.push({x: v.at, y: 1, xref: 'x', yref: 'paper', yanchor: 'bottom',
        showarrow: false, font: {color: '#d62728'},
        text: plotlyText(v.kind + ' pivot ' + v.magnitude)});
    });
    chart(sec, 'timeline-chart', traces, {
      height: 340, shapes: shapes, annotations: annotations, hovermode: 'closest',
      title: {text: plotlyText(p.page_id), font: {size: 13}, x: 0.01, y: 0.99},
      xaxis: {type: 'date', anchor: 'y2'},
      yaxis: {domain: [0.22, 1], title: {text: 'topic drift'}, rangemode: 'tozero'},
      yaxis2: {domain: [0, 0.14], showticklabels: false, showgrid: false, zeroline: false,
        fixedrange: true, title: {text: 'lang'}},
      legend: {orientation: 'h', y: -0.2}, margin: {l: 60, r: 20, t: 40, b: 30}});
    add(sec, el('p', 'note', 'Topic drift: each post\'s cosine distance to the mean of the ' +
      'page\'s posts before its first pivot (all its posts when it has none); the line is a ' +
      'rolling mean over ' + p.window + ' posts within each regime. Coloured ticks below: ' +
      'language of each post. Embeddings carry language too, so a language pivot moves the ' +
      'drift as well.'));
  }

  function regimeName(p, i) {
    if (p.regimes.length < 2) return 'all posts';
    if (i === 0) return 'before the pivot' + (p.regimes.length > 2 ? 's' : '');
    return 'after ' + (p.regimes.length > 2 ? 'pivot ' + i : 'the pivot');
  }

  function regimes(sec, p) {
    var ids = [];
    p.regimes.forEach(function (r) {
      r.mix.forEach(function (m) { if (ids.indexOf(m[0]) < 0) ids.push(m[0]); });
    });
    var line = p.regimes.map(function (r, i) {
      return (p.regimes.length > 1 ? regimeName(p, i) + ': ' : '') +
        fmt(r.n) + ' posts, ' + pct(r.untagged) + ' with no narrative';
    }).join(' · ');
    add(sec, el('p', 'meta', 'Narrative mix ' + (p.regimes.length > 1 ? 'each side of the ' +
      'pivots' : 'of the page') + ': ' + line + '.'));
    if (!ids.length) return;
    ids = ids.slice(0, 8);
    var names = {};
    p.regimes.forEach(function (r) { r.mix.forEach(function (m) { names[m[0]] = m[1]; }); });
    var labels = ids.map(function (id) { return plotlyText(names[id]); });
    var traces = p.regimes.map(function (r, i) {
      var share = {};
      r.mix.forEach(function (m) { share[m[0]] = m[2]; });
      return {type: 'bar', orientation: 'h', y: labels,
        x: ids.map(function (id) { return share[id] || 0; }),
        name: plotlyText(regimeName(p, i) + ' (' + r.from + ' to ' + r.to + ')'),
        marker: {color: REGIME_COLORS[Math.min(i, REGIME_COLORS.length - 1)]},
        hovertemplate: '%{x:.1%} of ' + r.n + ' posts<extra></extra>'};
    });
    chart(sec, 'regime-chart', traces, {
      height: 90 + 16 * ids.length * Math.min(p.regimes.length, 4), barmode: 'group',
      xaxis: {tickformat: '.1%', rangemode: 'tozero', title: {text: 'share of posts'}},
      yaxis: {autorange: 'reversed', automargin: true},
      legend: {orientation: 'h', x: 0, y: 1, yanchor: 'bottom'},
      margin: {l: 20, r: 20, t: 30, b: 40}});
  }

  // one post in a list: time, language, a label (its narrative or its page), id, text
  function postItem(list, post, label) {
    var li = add(list, el('li', 'post'));
    var meta = add(li, el('div', 'postmeta'));
    add(meta, el('span', 'time', post.at));
    var lang = add(meta, el('span', 'chip', post.lang || 'und'));
    lang.style.borderColor = langColor(post.lang);
    if (label) add(meta, el('span', 'narr', label));
    add(meta, el('span', 'pid', post.post_id));
    add(li, el('div', 'text', post.text));
  }

  function examples(sec, p) {
    var box = add(sec, el('div', 'examples'));
    p.examples.forEach(function (side) {
      var col = add(box, el('div', 'side'));
      add(col, el('h4', null, side.label + (side.kind ? ' (' + side.kind + ')' : '')));
      var list = add(col, el('ul'));
      side.posts.forEach(function (post) {
        postItem(list, post, post.narrative && (D.narratives[post.narrative] || post.narrative));
      });
    });
  }

  function pages() {
    var sec = add(root, el('section'));
    sec.id = 'pages';
    add(sec, el('h2', null, 'Pages in detail'));
    add(sec, el('p', 'note', (D.drawn_total < D.table_total ? 'The ' + D.drawn_total +
      ' pages ranked first (of ' + fmt(D.table_total) + ') are drawn.' :
      'All ' + D.drawn_total + ' pages are drawn.') + ' Times are UTC.'));
    D.pages.forEach(function (p) { pageSection(sec, p); });
  }

  function draw() {
    var total = pending.length, done = 0, failed = 0;
    document.body.dataset.charts = String(total);
    function finish() {
      if (done + failed === total) {
        document.body.dataset.drawn = String(done);
        document.body.dataset.failed = String(failed);
      }
    }
    if (!total) finish();
    pending.forEach(function (c) {
      window.Plotly.newPlot(c[0], c[1], c[2], CONFIG).then(function () {
        done += 1; finish();
      }, function (err) {
        failed += 1; console.error('chart failed', err); finish();
      });
    });
  }

  root.textContent = '';
  header();
  sinceUpdate();
  overview();
  pageTable();
  mixOverTime();
  timingSection();
  coordinationSection();
  pages();
  draw();
}());
