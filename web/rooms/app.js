// The `/rooms/` page: the lobby (public rooms, create a room, join one by its link) and the room
// (participants, mute, speaking, video, chat), on the client module integrators use too.
import { createRoom, guestToken, publicRooms, Room } from '/rooms/client.js';

const $ = (id) => document.getElementById(id);
const CHAT_TOPIC = 'chat';

/** The room joined, if any. Also `window.spacebarRoom`, for the console and the browser test. */
let room = null;
let speaking = new Set();

function status(text) {
  $('status').textContent = text;
}

function element(tag, attributes = {}, text = '') {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.textContent = text;
  return node;
}

function myName() {
  const input = $('name');
  const name = input.value.trim();
  if (!name) {
    input.focus();
    status('Type your name first.');
    return null;
  }
  localStorage.setItem('rooms.name', name);
  return name;
}

// ---- the lobby ----

async function refreshRooms() {
  const list = $('public-rooms');
  try {
    const rooms = await publicRooms();
    list.replaceChildren(
      ...rooms.map((info) => {
        const item = element('li');
        const count = info.num_participants ?? 0;
        item.append(element('span', {}, `${info.name} (${count} ${count === 1 ? 'person' : 'people'}) `));
        const join = element('button', { type: 'button' }, 'Join');
        join.setAttribute('aria-label', `Join ${info.name}`);
        join.addEventListener('click', () => enter(info.id));
        item.append(join);
        return item;
      }),
    );
    $('no-rooms').hidden = rooms.length > 0;
  } catch (error) {
    status(`Could not list the public rooms: ${error.message}`);
  }
}

async function create(event) {
  event.preventDefault();
  const name = myName();
  if (!name) return;
  const listed = new FormData($('create')).get('listed') === 'public';
  try {
    const created = await createRoom({ name: $('room-name').value.trim(), public: listed });
    await enter(created.id);
  } catch (error) {
    status(`Could not create the room: ${error.message}`);
  }
}

// ---- the room ----

async function enter(roomId) {
  const name = myName();
  if (!name || room) return;
  status('Joining…');
  try {
    const { token, url } = await guestToken({ room: roomId, name });
    room = await Room.connect(token, { url });
  } catch (error) {
    room = null;
    status(`Could not join: ${error.message}`);
    return;
  }
  window.spacebarRoom = room;
  speaking = new Set();
  listen(room);
  show(true);
  $('room-title').textContent = room.info?.name ?? 'Room';
  $('link').value = `${location.origin}/rooms/#${encodeURIComponent(roomId)}`;
  $('share').hidden = false;
  history.replaceState(null, '', `#${encodeURIComponent(roomId)}`);
  renderParticipants();
  status(`Joined ${room.info?.name ?? 'the room'}.`);
  try {
    const withCamera = $('camera').checked;
    const stream = await room.publish({ audio: true, video: withCamera });
    if (withCamera) {
      $('hide-camera').hidden = false;
      addVideo('self', stream, `${name} (you)`);
    }
  } catch (error) {
    status(`Joined, but your microphone could not be used: ${error.message}`);
  }
}

function listen(current) {
  const rerender = () => renderParticipants();
  for (const type of ['participant-joined', 'participant-updated', 'track-published', 'muted', 'unmuted']) {
    current.addEventListener(type, rerender);
  }
  current.addEventListener('participant-left', ({ detail }) => {
    document.querySelectorAll(`[data-participant="${CSS.escape(detail.identity)}"]`).forEach((n) => n.remove());
    renderParticipants();
  });
  current.addEventListener('track-unpublished', ({ detail }) => {
    document.querySelectorAll(`[data-sid="${CSS.escape(detail.sid)}"]`).forEach((n) => n.remove());
    renderParticipants();
  });
  current.addEventListener('track', ({ detail }) => {
    const who = current.participants.get(detail.participant)?.name ?? 'Someone';
    if (detail.track.kind === 'audio') {
      const audio = element('audio', { 'data-sid': detail.sid ?? '', 'data-participant': detail.participant ?? '' });
      audio.autoplay = true;
      audio.srcObject = new MediaStream([detail.track]);
      $('audio').append(audio);
    } else {
      addVideo(detail.sid ?? '', new MediaStream([detail.track]), who, detail.participant);
    }
  });
  current.addEventListener('speaking', ({ detail }) => {
    speaking = new Set(detail.speakers.map((s) => s.identity));
    renderParticipants();
  });
  current.addEventListener('data', ({ detail }) => {
    if (detail.topic !== CHAT_TOPIC || typeof detail.payload?.text !== 'string') return;
    const from = current.participants.get(detail.from)?.name ?? (detail.from ? 'Someone' : 'Server');
    addChat(from, detail.payload.text);
  });
  current.addEventListener('error', ({ detail }) => status(`The server refused: ${detail.message}`));
  current.addEventListener('close', ({ detail }) => {
    if (room !== current) return;
    leave();
    status(detail.code === 1000 ? 'You left the room.' : `Disconnected: ${detail.reason || detail.code}`);
  });
}

function renderParticipants() {
  if (!room) return;
  const everyone = [{ ...room.self, you: true }, ...room.participants.values()];
  $('participants').replaceChildren(
    ...everyone.map((p) => {
      const micMuted = p.you
        ? room.isMuted('microphone')
        : (p.tracks ?? []).some((t) => t.source === 'microphone' && t.muted);
      const item = element('li', { 'data-identity': p.identity });
      item.append(element('span', { class: 'name' }, p.you ? `${p.name} (you)` : p.name));
      if (micMuted) item.append(element('span', { class: 'muted' }, ' microphone muted'));
      if (speaking.has(p.identity)) {
        item.classList.add('speaking');
        item.append(element('span', { class: 'speaking-label' }, ' speaking'));
      }
      return item;
    }),
  );
}

function addVideo(sid, stream, caption, participant = '') {
  const figure = element('figure', { 'data-sid': sid, 'data-participant': participant });
  const video = element('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true;
  video.srcObject = stream;
  figure.append(video, element('figcaption', {}, caption));
  $('videos').append(figure);
}

function addChat(from, text) {
  const item = element('li');
  item.append(element('strong', {}, `${from}: `), document.createTextNode(text));
  $('chat-log').append(item);
  item.scrollIntoView({ block: 'nearest' });
}

function sendChat(event) {
  event.preventDefault();
  const input = $('message');
  const text = input.value.trim();
  if (!room || !text) return;
  room.send({ text }, { topic: CHAT_TOPIC });
  addChat(`${room.self.name} (you)`, text);
  input.value = '';
}

/** A toggle button: its label stays, `aria-pressed` (and its look) says whether it is on. */
function toggle(button, source) {
  const muted = button.getAttribute('aria-pressed') !== 'true';
  room?.setMuted(source, muted);
  button.setAttribute('aria-pressed', String(muted));
  renderParticipants();
}

function leave() {
  const current = room;
  room = null;
  window.spacebarRoom = null;
  if (current && current.self) current.leave();
  for (const id of ['participants', 'videos', 'audio', 'chat-log']) $(id).replaceChildren();
  for (const id of ['mute', 'hide-camera']) $(id).setAttribute('aria-pressed', 'false');
  $('hide-camera').hidden = true;
  history.replaceState(null, '', location.pathname);
  show(false);
  refreshRooms();
}

function show(inRoom) {
  $('room').hidden = !inRoom;
  $('lobby').hidden = inRoom;
  $('invited').hidden = true;
}

// ---- wiring ----

$('name').value = localStorage.getItem('rooms.name') ?? '';
$('refresh').addEventListener('click', refreshRooms);
$('create').addEventListener('submit', create);
$('chat').addEventListener('submit', sendChat);
$('mute').addEventListener('click', (e) => toggle(e.currentTarget, 'microphone'));
$('hide-camera').addEventListener('click', (e) => toggle(e.currentTarget, 'camera'));
$('leave').addEventListener('click', () => {
  leave();
  status('You left the room.');
});
$('copy').addEventListener('click', async () => {
  await navigator.clipboard?.writeText($('link').value);
  status('Link copied.');
});

// A link `/rooms/#<room id>` invites to that room (the id stays in the fragment: never sent to a
// server or kept in a referrer).
const invitation = () => decodeURIComponent(location.hash.slice(1));
function showInvitation() {
  $('invited').hidden = !invitation() || room !== null;
}
$('join-invited').addEventListener('click', () => enter(invitation()));
window.addEventListener('hashchange', showInvitation);
showInvitation();
refreshRooms();
