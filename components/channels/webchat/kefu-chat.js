// Kefu web chat: a dependency-free socket.io client (Engine.IO 4 over WebSocket) for Rasa's
// socket.io channel as components.channels.socketio serves it. No external scripts or fonts:
// the page works offline and under a strict Content-Security-Policy.
(function () {
  "use strict";
  var SESSION_KEY = "kefu.session";
  var SOURCES = /^(Sources?|来源)\s*[:：]/;
  var el = function (id) { return document.getElementById(id); };
  var list = el("kefu-messages"), typing = el("kefu-typing"), quick = el("kefu-quick");
  var status = el("kefu-status"), form = el("kefu-form"), input = el("kefu-input");

  var ws = null, sessionId = null, ready = false, retries = 0, pingTimer = null;
  var outbox = [];  // messages typed while offline, sent after the reconnect

  function setStatus(state, text) { status.dataset.state = state; status.textContent = text; }

  function scroll() { list.scrollTop = list.scrollHeight; }

  function add(kind, text) {
    var li = document.createElement("li");
    li.className = kind;
    if (kind === "bot" && SOURCES.test(text)) { li.className += " sources"; }
    li.textContent = text;
    list.appendChild(li);
    scroll();
    return li;
  }

  function clearQuick() { quick.textContent = ""; }

  function send(text, shown) {
    add("user", shown === undefined ? text : shown);
    clearQuick();
    // only on an open socket: a closing one drops what it is given without a word
    if (ready && ws && ws.readyState === WebSocket.OPEN) {
      emit("user_uttered", { message: text, session_id: sessionId });
    } else {
      outbox.push(text);
    }
  }

  function renderButtons(li, buttons, inline) {
    var box = document.createElement("div");
    box.className = "buttons";
    buttons.forEach(function (b) {
      var btn = document.createElement("button");
      btn.type = "button";
      btn.textContent = b.title;
      btn.addEventListener("click", function () {
        Array.prototype.forEach.call(box.querySelectorAll("button"),
          function (x) { x.disabled = true; });
        send(b.payload, b.title);
      });
      box.appendChild(btn);
    });
    (inline ? li : quick).appendChild(box);
  }

  function onBot(msg) {
    if (!msg || typeof msg !== "object") { return; }
    var li = null;
    if (typeof msg.text === "string" && msg.text) { li = add("bot", msg.text); }
    var att = msg.attachment;
    if (att && att.type === "image" && att.payload && att.payload.src) {
      li = li || add("bot", "");
      var img = document.createElement("img");
      img.src = att.payload.src; img.alt = "";
      li.appendChild(img);
    }
    if (Array.isArray(msg.quick_replies) && msg.quick_replies.length) {
      renderButtons(li || add("bot", ""), msg.quick_replies, true);
    }
    if (Array.isArray(msg.buttons) && msg.buttons.length) {
      renderButtons(li || add("bot", ""), msg.buttons, true);
    }
  }

  // ------------------------------------------------------------------ socket.io protocol
  function emit(event, data) { ws.send("42" + JSON.stringify([event, data])); }

  function onPacket(packet) {
    var type = packet.charAt(0);
    if (type === "0") {  // engine.io open
      var open = JSON.parse(packet.slice(1));
      ws.send("40");
      armPing(open.pingInterval + open.pingTimeout);
    } else if (type === "2") { ws.send("3"); armPing(); }  // ping -> pong
    else if (type === "1") { ws.close(); }
    else if (type === "4") { onSocket(packet.slice(1)); }
  }

  function onSocket(packet) {
    var type = packet.charAt(0);
    if (type === "0") {  // namespace connected
      emit("session_request", { session_id: sessionId });
    } else if (type === "2") {
      var event = JSON.parse(packet.slice(1));
      var name = event[0], data = event[1];
      if (name === "session_confirm") {
        sessionId = data;
        try { localStorage.setItem(SESSION_KEY, sessionId); } catch (e) { /* private mode */ }
        ready = true; retries = 0;
        setStatus("online", "online");
        while (outbox.length) { emit("user_uttered", { message: outbox.shift(), session_id: sessionId }); }
      } else if (name === "bot_uttered") {
        onBot(data);
      } else if (name === "bot_typing") {
        typing.hidden = !(data && data.typing);
        scroll();
      } else if (name === "kefu_error") {
        add("error", (data && data.message) || "The message could not be sent.");
      }
    } else if (type === "4") {  // connect refused
      setStatus("offline", "refused");
    }
  }

  var pingDeadline = 45000;
  function armPing(ms) {
    if (ms) { pingDeadline = ms; }
    clearTimeout(pingTimer);
    pingTimer = setTimeout(drop, pingDeadline);
  }

  function drop() {  // stop sending at once; onclose reconnects
    ready = false;
    if (ws) { ws.close(); }
  }

  function connect() {
    setStatus("connecting", retries ? "reconnecting…" : "connecting…");
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + location.host + "/socket.io/?EIO=4&transport=websocket");
    ws.onmessage = function (e) { if (typeof e.data === "string") { onPacket(e.data); } };
    ws.onclose = function () {
      ready = false; typing.hidden = true; clearTimeout(pingTimer);
      setStatus("offline", "offline — reconnecting");
      retries += 1;
      setTimeout(connect, Math.min(1000 * Math.pow(2, retries - 1), 15000));
    };
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    send(text);
  });

  try { sessionId = localStorage.getItem(SESSION_KEY); } catch (e) { sessionId = null; }
  window.kefuChat = { reconnect: drop };
  connect();
})();
