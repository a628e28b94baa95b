// The Spacebar rooms client: a small ES module (no dependencies, no build step) that joins a room
// over `/rooms/ws` (protocol: docs/rooms.md), publishes the microphone and camera, receives
// everyone else, and sends data. The `/rooms/` page is built on it; integrators can import it
// from `https://<server>/rooms/client.js` the same way.
//
//   import { guestToken, Room } from '/rooms/client.js';
//   const { token } = await guestToken({ room: 'ROOM_ID', name: 'Ada' });
//   const room = await Room.connect(token);
//   room.addEventListener('track', (e) => attach(e.detail.track, e.detail.participant));
//   await room.publish({ audio: true, video: false });
//   room.send({ text: 'hello' }, { topic: 'chat' });

/** A failed HTTP call or a server `error` message. */
export class RoomsError extends Error {
  /** `url`: where the room is, when the server says it is on another node (4014). */
  constructor(message, code, url) {
    super(message);
    this.name = 'RoomsError';
    this.code = code;
    this.url = url;
  }
}

async function call(base, method, path, body) {
  const response = await fetch(new URL(path, base), {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // A non-JSON body (a proxy's error page): keep the status as the message.
  }
  if (!response.ok) {
    throw new RoomsError(json?.message ?? `${method} ${path}: HTTP ${response.status}`, response.status);
  }
  return json;
}

/** The server this module was loaded from: where a page that imports it talks to by default. */
const HERE = new URL('..', import.meta.url).href;

/** The public rooms: `[{id, name, num_participants, created_at, metadata}]`. */
export async function publicRooms(base = HERE) {
  const body = await call(base, 'GET', 'rooms/public');
  return Array.isArray(body) ? body : body?.rooms ?? [];
}

/**
 * A guest's token for a room (public, or private by its id): `{token, url, identity, room,
 * expires_at}` (`url`: the signalling socket, for `Room.connect`).
 */
export async function guestToken({ room, name }, base = HERE) {
  return call(base, 'POST', 'rooms/guest', { room, name });
}

/**
 * Creates a room as a guest: `{name, public}` → the room (`{id, name, public, ...}`). A private
 * room is listed nowhere; its id is the link.
 */
export async function createRoom({ name, public: listed }, base = HERE) {
  return call(base, 'POST', 'rooms/new', { name, public: listed });
}

/** The WebSocket URL of `/rooms/ws`: `url` as the server named it, or on the server at `base`. */
function socketUrl(base, url, token) {
  const socket = new URL(url ?? 'rooms/ws', base);
  if (socket.protocol === 'https:') socket.protocol = 'wss:';
  if (socket.protocol === 'http:') socket.protocol = 'ws:';
  socket.searchParams.set('token', token);
  return socket.href;
}

const PING_EVERY_MS = 20_000;

/** In a cluster: the room is served by another node, whose socket the error's `url` names. */
const ON_ANOTHER_NODE = 4014;

/**
 * One participant's connection to one room. Events (`detail` in brackets):
 * `participant-joined` / `participant-updated` [participant], `participant-left` [{identity}],
 * `track` [{track, stream, participant, sid, source}] (a remote track to play),
 * `track-published` / `track-unpublished` / `muted` / `unmuted` [{participant, sid, track?}],
 * `speaking` [{speakers}], `data` [{from, payload, kind, topic}], `room-updated` [room],
 * `error` [RoomsError] (a refused request), `close` [{code, reason}].
 * `participants` is a Map of the others by identity, kept current.
 */
export class Room extends EventTarget {
  /**
   * Connects with a room token and joins; resolves once `joined` arrived. `url` is the socket
   * the token came with (`guestToken`'s `url`); without it, `/rooms/ws` on `base`.
   */
  static async connect(token, { base = HERE, url, iceServers = [] } = {}) {
    let room = new Room(socketUrl(base, url, token), iceServers);
    try {
      await room.#joined;
    } catch (error) {
      // In a cluster the room lives on one node, and this one was another: followed once.
      if (error.code !== ON_ANOTHER_NODE || !error.url) throw error;
      room = new Room(socketUrl(base, error.url, token), iceServers);
      await room.#joined;
    }
    return room;
  }

  /** The room (`{id, name, metadata, ...}`), yourself, and the others by identity. */
  info = null;
  self = null;
  participants = new Map();

  #socket;
  #iceServers;
  #joined;
  #publisher = null;
  #subscriber = null;
  #lossy = null;
  /** Our published tracks by `mid` (`{track, source, sid}`), and the remote ones by `mid`. */
  #published = new Map();
  #remote = new Map();
  /** Server messages are handled one at a time, so SDP steps never interleave. */
  #queue = Promise.resolve();
  #ping = null;

  constructor(url, iceServers) {
    super();
    this.#iceServers = iceServers;
    this.#socket = new WebSocket(url);
    this.#joined = new Promise((resolve, reject) => {
      this.#socket.addEventListener('open', () => {
        this.#send({ type: 'join', auto_subscribe: true });
        this.#ping = setInterval(() => this.#send({ type: 'ping', ts: Date.now() }), PING_EVERY_MS);
      });
      this.#socket.addEventListener('message', (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return;
        }
        if (message.type === 'joined') {
          this.#onJoined(message);
          resolve();
        } else if (message.type === 'error' && !this.self) {
          reject(new RoomsError(message.message, message.code, message.url));
        }
        this.#queue = this.#queue
          .then(() => this.#handle(message))
          .catch((error) => this.#emit('error', error));
      });
      this.#socket.addEventListener('close', (event) => {
        clearInterval(this.#ping);
        this.#publisher?.close();
        this.#subscriber?.close();
        reject(new RoomsError(event.reason || `closed (${event.code})`, event.code));
        this.#emit('close', { code: event.code, reason: event.reason });
      });
    });
  }

  /**
   * Publishes the microphone (and the camera): asks for them, sends them, and returns the local
   * stream (show its video muted). Calling it again replaces nothing: publish once.
   */
  async publish({ audio = true, video = false } = {}) {
    const stream = await navigator.mediaDevices.getUserMedia({ audio, video });
    const pc = this.#publishConnection();
    const sent = stream.getTracks().map((track) => ({
      track,
      source: track.kind === 'audio' ? 'microphone' : 'camera',
      transceiver: pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] }),
    }));
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const tracks = sent.map(({ track, source, transceiver }) => {
      this.#published.set(transceiver.mid, { track, source, sid: null });
      return { mid: transceiver.mid, source, name: track.label };
    });
    this.#send({ type: 'publish-offer', sdp: pc.localDescription.sdp, tracks });
    return stream;
  }

  /** Mutes or unmutes your published tracks of one source (`microphone`, `camera`). */
  setMuted(source, muted) {
    for (const published of this.#published.values()) {
      if (published.source !== source) continue;
      // Disabled, the track sends silence (black) even before the server stops forwarding it.
      published.track.enabled = !muted;
      if (published.sid) this.#send({ type: muted ? 'mute' : 'unmute', sid: published.sid });
      published.muted = muted;
    }
  }

  /** Whether your tracks of `source` are muted. */
  isMuted(source) {
    return [...this.#published.values()].some((p) => p.source === source && p.muted);
  }

  /**
   * Sends JSON data to everyone else (or to `to`, identities). `kind: 'lossy'` goes over the
   * data channel when it is open (dropped rather than late), else over the socket.
   */
  send(payload, { kind = 'reliable', to, topic } = {}) {
    const message = { type: 'publish-data', kind, payload };
    if (to) message.to = to;
    if (topic) message.topic = topic;
    if (kind === 'lossy' && this.#lossy?.readyState === 'open') {
      this.#lossy.send(JSON.stringify(message));
    } else {
      this.#send(message);
    }
  }

  /** The connections' `getStats()` reports: `{publish, subscribe}` (null when not open). */
  async stats() {
    return {
      publish: this.#publisher ? await this.#publisher.getStats() : null,
      subscribe: this.#subscriber ? await this.#subscriber.getStats() : null,
    };
  }

  /** Leaves the room and stops your tracks. */
  leave() {
    this.#send({ type: 'leave' });
    for (const { track } of this.#published.values()) track.stop();
    this.#socket.close(1000);
  }

  #send(message) {
    if (this.#socket.readyState === WebSocket.OPEN) this.#socket.send(JSON.stringify(message));
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #onJoined({ room, participant, participants }) {
    this.info = room;
    this.self = participant;
    for (const other of participants) this.participants.set(other.identity, other);
  }

  #track(identity, sid) {
    return this.participants.get(identity)?.tracks?.find((t) => t.sid === sid);
  }

  async #handle(message) {
    switch (message.type) {
      case 'participant-joined':
      case 'participant-updated': {
        const { participant } = message;
        if (participant.identity === this.self?.identity) {
          this.self = { ...this.self, ...participant };
        } else {
          this.participants.set(participant.identity, participant);
        }
        this.#emit(message.type, participant);
        break;
      }
      case 'participant-left':
        this.participants.delete(message.identity);
        this.#emit('participant-left', { identity: message.identity });
        break;
      case 'track-published': {
        const { participant, track } = message;
        const published = track.mid && this.#published.get(track.mid);
        if (participant === this.self?.identity) {
          if (published && !published.sid) this.#learnSid(published, track.sid);
        } else {
          const other = this.participants.get(participant);
          if (other) other.tracks = [...(other.tracks ?? []).filter((t) => t.sid !== track.sid), track];
        }
        this.#emit('track-published', { participant, sid: track.sid, track });
        break;
      }
      case 'track-unpublished': {
        const other = this.participants.get(message.participant);
        if (other) other.tracks = (other.tracks ?? []).filter((t) => t.sid !== message.sid);
        this.#emit('track-unpublished', { participant: message.participant, sid: message.sid });
        break;
      }
      case 'muted':
      case 'unmuted': {
        const track = this.#track(message.participant, message.sid);
        if (track) track.muted = message.type === 'muted';
        this.#emit(message.type, { participant: message.participant, sid: message.sid, track });
        break;
      }
      case 'publish-answer':
        await this.#publisher.setRemoteDescription({ type: 'answer', sdp: message.sdp });
        for (const track of message.tracks ?? []) {
          const published = this.#published.get(track.mid);
          if (published && track.sid) this.#learnSid(published, track.sid);
        }
        break;
      case 'subscribe-offer':
        await this.#answer(message);
        break;
      case 'ice-candidate': {
        const pc = message.target === 'publish' ? this.#publisher : this.#subscriber;
        if (pc && message.candidate) {
          await pc.addIceCandidate({
            candidate: message.candidate,
            sdpMid: message.sdp_mid ?? null,
            sdpMLineIndex: message.sdp_mline_index ?? null,
          });
        }
        break;
      }
      case 'data':
        this.#emit('data', { from: message.from, payload: message.payload, kind: message.kind, topic: message.topic });
        break;
      case 'speaking':
        this.#emit('speaking', { speakers: message.speakers });
        break;
      case 'room-updated':
        this.info = message.room;
        this.#emit('room-updated', message.room);
        break;
      case 'error':
        this.#emit('error', new RoomsError(message.message, message.code));
        break;
      default:
        // `joined` was taken at arrival; `pong` needs nothing; newer messages are ignored.
        break;
    }
  }

  /** A track's sid is known: a mute made before it was applies now. */
  #learnSid(published, sid) {
    published.sid = sid;
    if (published.muted) this.#send({ type: 'mute', sid });
  }

  #publishConnection() {
    if (this.#publisher) return this.#publisher;
    const pc = new RTCPeerConnection({ iceServers: this.#iceServers, bundlePolicy: 'max-bundle' });
    this.#trickle(pc, 'publish-ice-candidate');
    this.#lossy = pc.createDataChannel('_lossy', { ordered: false, maxRetransmits: 0 });
    this.#publisher = pc;
    return pc;
  }

  /** Answers a `subscribe-offer` on the subscribe connection (made on the first one). */
  async #answer({ sdp, tracks }) {
    if (!this.#subscriber) {
      const pc = new RTCPeerConnection({ iceServers: this.#iceServers, bundlePolicy: 'max-bundle' });
      this.#trickle(pc, 'subscribe-ice-candidate');
      pc.addEventListener('track', (event) => this.#onTrack(event));
      pc.addEventListener('datachannel', ({ channel }) => {
        channel.addEventListener('message', (event) => {
          try {
            const { from, payload, topic } = JSON.parse(event.data);
            this.#emit('data', { from, payload, kind: 'lossy', topic });
          } catch {
            // Not JSON: nothing the protocol sends.
          }
        });
      });
      this.#subscriber = pc;
    }
    for (const track of tracks ?? []) if (track.mid != null) this.#remote.set(track.mid, track);
    await this.#subscriber.setRemoteDescription({ type: 'offer', sdp });
    const answer = await this.#subscriber.createAnswer();
    await this.#subscriber.setLocalDescription(answer);
    this.#send({ type: 'subscribe-answer', sdp: this.#subscriber.localDescription.sdp });
  }

  #onTrack({ track, streams, transceiver }) {
    const described = this.#remote.get(transceiver.mid) ?? {};
    this.#emit('track', {
      track,
      stream: streams[0] ?? new MediaStream([track]),
      participant: described.participant ?? null,
      sid: described.sid ?? null,
      source: described.source ?? (track.kind === 'audio' ? 'microphone' : 'camera'),
    });
  }

  #trickle(pc, type) {
    pc.addEventListener('icecandidate', ({ candidate }) => {
      this.#send({
        type,
        candidate: candidate?.candidate ?? '',
        sdp_mid: candidate?.sdpMid ?? undefined,
        sdp_mline_index: candidate?.sdpMLineIndex ?? undefined,
      });
    });
  }
}
