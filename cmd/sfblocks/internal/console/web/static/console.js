// sfblocks console: the little the pages do without a reload. Every page
// works without it; it refreshes the live pages, counts the selection and
// follows an action's progress. Loaded from /static, as the Content
// Security Policy allows no inline script.
(function () {
  'use strict';

  // The dead-letter list: select all, count the selection. Delegated, as
  // a refresh replaces the list.
  function countSelection() {
    var n = document.querySelectorAll('input[name="seqs"]:checked').length;
    document.querySelectorAll('[data-selected-count]').forEach(function (e) { e.textContent = String(n); });
    document.querySelectorAll('button[data-needs-selection]').forEach(function (b) { b.disabled = n === 0; });
  }
  document.addEventListener('change', function (ev) {
    var t = ev.target;
    if (t.matches && t.matches('input[data-select-all]')) {
      document.querySelectorAll('input[name="seqs"]').forEach(function (b) { b.checked = t.checked; });
    }
    if (t.matches && t.matches('input[name="seqs"], input[data-select-all]')) { countSelection(); }
  });
  countSelection();

  // Live pages (<main data-refresh="5">) refresh their content every few
  // seconds while visible, but never under the operator's hands: not while
  // a field has the focus or dead letters are selected.
  var main = document.querySelector('main[data-refresh]');
  var secs = main ? parseInt(main.getAttribute('data-refresh'), 10) : 0;
  function busy() {
    var a = document.activeElement;
    if (a && main.contains(a) && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName)) { return true; }
    return main.querySelector('input[name="seqs"]:checked') !== null;
  }
  // A page that names its state (<main data-refresh-state="...">, the
  // dead-letter list) is fetched again only when /dlq/state says the
  // stream changed: reading every dead letter costs the console, not that.
  function changed() {
    var was = main.getAttribute('data-refresh-state');
    if (!was) { return Promise.resolve(true); }
    return fetch('/dlq/state', { credentials: 'same-origin' }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (s) { return s !== null && s.state !== was; });
  }
  if (secs > 0) {
    setInterval(function () {
      if (document.visibilityState !== 'visible' || busy()) { return; }
      var open = {};
      main.querySelectorAll('details[open]').forEach(function (d) { open[d.parentNode.id] = true; });
      changed().then(function (yes) {
        return yes ? fetch(location.href, { credentials: 'same-origin' }) : null;
      }).then(function (r) {
        return r && r.ok && !r.redirected ? r.text() : null;
      }).then(function (html) {
        if (!html || busy()) { return; }
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var next = doc.querySelector('main');
        if (!next) { return; }
        main.innerHTML = next.innerHTML;
        main.setAttribute('data-refresh-state', next.getAttribute('data-refresh-state') || '');
        main.querySelectorAll('details').forEach(function (d) { if (open[d.parentNode.id]) { d.open = true; } });
        var foot = doc.querySelector('footer'), here = document.querySelector('footer');
        if (foot && here) { here.textContent = foot.textContent; }
        countSelection();
      }).catch(function () {});
    }, secs * 1000);
  }

  // An action's page follows its progress, then reloads for the summary.
  var act = document.querySelector('[data-action]');
  if (act && act.getAttribute('data-done') !== 'true') {
    var id = act.getAttribute('data-action');
    var bar = document.getElementById('bar');
    var set = function (elID, v) { var e = document.getElementById(elID); if (e) { e.textContent = String(v); } };
    var poll = function () {
      fetch('/actions/' + encodeURIComponent(id) + '/progress', { credentials: 'same-origin' }).then(function (r) {
        if (!r.ok) { throw new Error('status ' + r.status); }
        return r.json();
      }).then(function (s) {
        set('settled', s.settled); set('total', s.total); set('succeeded', s.succeeded);
        set('failed-again', s.failed_again); set('skipped', s.skipped); set('purged', s.purged);
        if (bar) { bar.max = Math.max(s.total, 1); bar.value = s.settled; }
        if (s.done) { location.reload(); return; }
        setTimeout(poll, 400);
      }).catch(function () { setTimeout(poll, 2000); });
    };
    setTimeout(poll, 200);
  }
})();
