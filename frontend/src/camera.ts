// One camera: live view or playback, the timeline under it, its events and its buttons.
import { LitElement, css, html, nothing } from "lit";
import { localize, language } from "./localize";
import "./timeline";
import type { HomeAssistant, LovelaceCard, Playback, Timeline, TimelineEvent } from "./types";

const ZOOMS = [3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400];
const EXPORT_MAX_S = 6 * 3600; // pm_dvr.export's limit
const REFRESH_MS = 30_000; // the timeline of a view that follows "now"
const PREVIEW_MS = 150; // at most one still per this while scrubbing

export class PmDvrCamera extends LitElement {
  static properties = {
    hass: { attribute: false },
    entity: { type: String },
    hours: { type: Number },
    span: { state: true },
    viewEnd: { state: true },
    timeline: { state: true },
    playback: { state: true },
    cursor: { state: true },
    preview: { state: true },
    message: { state: true },
    exported: { state: true },
    busy: { state: true },
  };

  hass?: HomeAssistant;
  entity = "";
  hours = 24;
  span = 86400;
  viewEnd: number | null = null; // null: the view ends now and follows it
  timeline?: Timeline;
  playback?: Playback;
  cursor: number | null = null;
  preview?: string;
  message?: string;
  exported?: { url: string; name: string };
  busy = false;
  private live?: LovelaceCard;
  private timer?: number;
  private previewAt = 0;
  private loaded = "";

  connectedCallback() {
    super.connectedCallback();
    this.timer = window.setInterval(() => {
      if (this.viewEnd === null) void this.load();
    }, REFRESH_MS);
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    window.clearInterval(this.timer);
  }

  willUpdate(changed: Map<string, unknown>) {
    if (changed.has("hours")) {
      this.span = ZOOMS.find((z) => z >= this.hours * 3600) ?? ZOOMS.at(-1)!;
    }
    if (this.live && this.hass) this.live.hass = this.hass;
    const key = `${this.entity}|${this.span}|${this.viewEnd}`;
    if (this.hass && this.entity && key !== this.loaded) {
      this.loaded = key;
      void this.load();
    }
    if (this.hass && this.entity && !this.live) void this.makeLive();
  }

  private get range(): [number, number] {
    const end = this.viewEnd ?? Date.now() / 1000;
    return [end - this.span, end];
  }

  private t(key: string, values?: Record<string, string>) {
    return localize(this.hass, key, values);
  }

  private async load() {
    const [start, end] = this.range;
    try {
      this.timeline = await this.hass!.callWS<Timeline>({
        type: "pm_dvr/timeline",
        entity_id: this.entity,
        start,
        end,
      });
    } catch (err) {
      this.message = errorText(err);
    }
  }

  private async makeLive() {
    const helpers = await window.loadCardHelpers?.();
    if (!helpers || this.live) return;
    this.live = helpers.createCardElement({
      type: "picture-entity",
      entity: this.entity,
      camera_view: "live",
      show_name: false,
      show_state: false,
    });
    this.live.hass = this.hass;
    this.requestUpdate();
  }

  private async play(time: number) {
    this.message = undefined;
    try {
      this.playback = await this.hass!.callWS<Playback>({
        type: "pm_dvr/playback",
        entity_id: this.entity,
        time,
      });
      this.cursor = Math.max(time, this.playback.start);
    } catch (err) {
      this.message = errorText(err);
    }
  }

  private started(event: Event) {
    // The video begins on the keyframe at or before the moment: skip the rest of that GOP.
    const video = event.target as HTMLVideoElement;
    const skip = this.playback ? this.playback.time - this.playback.start : 0;
    if (skip > 0 && skip < video.duration) video.currentTime = skip;
    void video.play().catch(() => undefined);
  }

  private progressed(event: Event) {
    const video = event.target as HTMLVideoElement;
    if (this.playback) this.cursor = this.playback.start + video.currentTime;
  }

  private ended(event: Event) {
    // One playback runs an hour at most: go on from where it stopped.
    const video = event.target as HTMLVideoElement;
    if (this.playback) void this.play(this.playback.start + video.duration + 0.01);
  }

  private goLive() {
    this.playback = undefined;
    this.cursor = null;
    this.preview = undefined;
  }

  private async seek(event: CustomEvent<{ time: number; final: boolean }>) {
    const { time, final } = event.detail;
    this.cursor = time;
    if (final) {
      this.preview = undefined;
      await this.play(time);
      return;
    }
    const now = Date.now();
    if (now - this.previewAt < PREVIEW_MS) return;
    this.previewAt = now;
    try {
      const { url } = await this.hass!.callWS<{ url: string }>({
        type: "pm_dvr/thumbnail",
        entity_id: this.entity,
        time,
      });
      this.preview = url;
    } catch {
      this.preview = undefined;
    }
  }

  private zoom(step: number) {
    const index = Math.min(ZOOMS.length - 1, Math.max(0, ZOOMS.indexOf(this.span) + step));
    const [start, end] = this.range;
    const middle = this.cursor ?? (start + end) / 2;
    this.span = ZOOMS[index];
    this.moveTo(middle + this.span / 2);
  }

  private pan(direction: number) {
    this.moveTo(this.range[1] + (direction * this.span) / 2);
  }

  private moveTo(end: number) {
    this.viewEnd = end >= Date.now() / 1000 ? null : end;
  }

  private get persistentSwitch(): string | undefined {
    const device = this.hass?.entities?.[this.entity]?.device_id;
    if (!device) return undefined;
    return Object.values(this.hass!.entities!).find(
      (e) =>
        e.device_id === device &&
        e.platform === "pm_dvr" &&
        e.translation_key === "persistent_recording",
    )?.entity_id;
  }

  private async act(what: () => Promise<void>) {
    this.busy = true;
    this.message = undefined;
    try {
      await what();
    } catch (err) {
      this.message = errorText(err);
    } finally {
      this.busy = false;
    }
  }

  private capture() {
    return this.act(async () => {
      await this.hass!.callService("pm_dvr", "capture_event", { entity_id: this.entity });
      this.message = this.t("camera.captured");
      await this.load();
    });
  }

  private persistent(on: boolean) {
    const entity = this.persistentSwitch;
    return this.act(async () => {
      await this.hass!.callService("switch", on ? "turn_on" : "turn_off", { entity_id: entity });
    });
  }

  private exportRange() {
    const [start, end] = this.range;
    return this.act(async () => {
      this.exported = undefined;
      this.message = this.t("camera.exporting");
      const reply = await this.hass!.callWS<{ response: { url: string; path: string } }>({
        type: "call_service",
        domain: "pm_dvr",
        service: "export",
        service_data: { entity_id: this.entity, start, end },
        return_response: true,
      });
      const name = reply.response.path.split("/").at(-1) ?? "";
      this.exported = { url: reply.response.url, name };
      this.message = this.t("camera.exported", { name });
    });
  }

  private when(time: number): string {
    const zone = this.hass?.locale?.time_zone === "server" ? this.hass.config.time_zone : undefined;
    return new Intl.DateTimeFormat(language(this.hass), {
      timeZone: zone,
      dateStyle: "short",
      timeStyle: "medium",
    }).format(new Date(time * 1000));
  }

  private renderEvent(event: TimelineEvent) {
    return html`
      <button class="event" @click=${() => this.play(event.start)}>
        ${event.thumbnail ? html`<img src=${event.thumbnail} alt="" loading="lazy" />` : nothing}
        <span class="label">${event.label ?? event.trigger ?? event.id}</span>
        <span class="time">${this.when(event.start)}</span>
      </button>
    `;
  }

  render() {
    if (!this.hass) return nothing;
    const state = this.hass.states[this.entity];
    const [start, end] = this.range;
    const events = [...(this.timeline?.events ?? [])].reverse();
    const switchId = this.persistentSwitch;
    const persistentOn = switchId ? this.hass.states[switchId]?.state === "on" : false;
    const zone = this.hass.locale?.time_zone === "server" ? this.hass.config.time_zone : undefined;
    return html`
      <div class="head">
        <span class="name">${state?.attributes.friendly_name ?? this.entity}</span>
        ${this.playback
          ? html`<span class="mode">${this.t("camera.playing", { time: this.when(this.cursor ?? this.playback.time) })}</span>
              <button class="live" @click=${this.goLive}>${this.t("camera.live")}</button>`
          : html`<span class="mode live-badge">${this.t("camera.live")}</span>`}
      </div>
      <div class="view">
        ${this.playback
          ? html`<video
              src=${this.playback.url}
              muted
              playsinline
              controls
              @loadedmetadata=${this.started}
              @timeupdate=${this.progressed}
              @ended=${this.ended}
            ></video>`
          : (this.live ?? nothing)}
        ${this.preview ? html`<img class="preview" src=${this.preview} alt="" />` : nothing}
      </div>
      <div class="controls">
        <button title=${this.t("camera.earlier")} @click=${() => this.pan(-1)}>◀</button>
        <button title=${this.t("camera.zoom_out")} @click=${() => this.zoom(1)}>−</button>
        <button title=${this.t("camera.zoom_in")} @click=${() => this.zoom(-1)}>+</button>
        <button title=${this.t("camera.later")} @click=${() => this.pan(1)}>▶</button>
        <button @click=${() => this.moveTo(Infinity)}>${this.t("camera.now")}</button>
      </div>
      <pm-dvr-timeline
        .start=${start}
        .end=${end}
        .recordings=${this.timeline?.recordings ?? []}
        .motion=${this.timeline?.motion ?? []}
        .events=${this.timeline?.events ?? []}
        .cursor=${this.cursor}
        .timeZone=${zone}
        .locale=${language(this.hass)}
        @pm-dvr-seek=${this.seek}
      ></pm-dvr-timeline>
      <div class="actions">
        <button class="capture" ?disabled=${this.busy} @click=${this.capture}>${this.t("camera.capture")}</button>
        ${switchId
          ? html`<button class="persistent" ?disabled=${this.busy} @click=${() => this.persistent(!persistentOn)}>
              ${this.t(persistentOn ? "camera.persistent_off" : "camera.persistent_on")}
            </button>`
          : nothing}
        <button
          class="export"
          ?disabled=${this.busy || this.span > EXPORT_MAX_S}
          title=${this.span > EXPORT_MAX_S ? this.t("camera.export_too_long") : ""}
          @click=${this.exportRange}
        >
          ${this.t("camera.export")}
        </button>
        ${this.exported
          ? html`<a class="download" href=${this.exported.url} download=${this.exported.name}>${this.t("camera.download")}</a>`
          : nothing}
      </div>
      ${this.message ? html`<div class="message">${this.message}</div>` : nothing}
      <div class="events">
        <div class="title">${this.t("camera.events")}</div>
        ${events.length
          ? html`<div class="list">${events.map((e) => this.renderEvent(e))}</div>`
          : html`<div class="empty">${this.t("camera.no_events")}</div>`}
      </div>
    `;
  }

  static styles = css`
    :host {
      display: block;
      color: var(--primary-text-color);
    }
    .head {
      display: flex;
      align-items: center;
      gap: 8px;
      padding: 8px 0;
    }
    .name {
      font-weight: 500;
      flex: 1;
      overflow: hidden;
      text-overflow: ellipsis;
      white-space: nowrap;
    }
    .mode {
      font-size: 12px;
      color: var(--secondary-text-color);
    }
    .live-badge {
      color: var(--error-color, #db4437);
      font-weight: 500;
    }
    .view {
      position: relative;
      background: #000;
      aspect-ratio: 16 / 9;
      overflow: hidden;
      border-radius: var(--ha-card-border-radius, 12px);
    }
    .view > * {
      width: 100%;
      height: 100%;
    }
    video {
      display: block;
      object-fit: contain;
    }
    .preview {
      position: absolute;
      inset: 0;
      object-fit: contain;
      background: #000;
    }
    .controls,
    .actions {
      display: flex;
      flex-wrap: wrap;
      gap: 6px;
      padding: 8px 0;
    }
    button,
    .download {
      font: inherit;
      font-size: 13px;
      padding: 6px 10px;
      border-radius: 8px;
      border: 1px solid var(--divider-color, rgba(0, 0, 0, 0.12));
      background: var(--secondary-background-color, #f5f5f5);
      color: var(--primary-text-color);
      cursor: pointer;
      text-decoration: none;
    }
    button:disabled {
      opacity: 0.5;
      cursor: default;
    }
    .message {
      font-size: 13px;
      color: var(--secondary-text-color);
      padding-bottom: 8px;
    }
    .events .title {
      font-weight: 500;
      padding: 4px 0;
    }
    .list {
      display: flex;
      gap: 8px;
      overflow-x: auto;
      padding-bottom: 8px;
    }
    .event {
      display: flex;
      flex-direction: column;
      align-items: flex-start;
      min-width: 128px;
      max-width: 128px;
      padding: 4px;
      text-align: left;
    }
    .event img {
      width: 120px;
      height: 68px;
      object-fit: cover;
      border-radius: 4px;
    }
    .event .label,
    .event .time {
      font-size: 12px;
      max-width: 120px;
      overflow: hidden;
      text-overflow: ellipsis;
      white-space: nowrap;
    }
    .event .time,
    .empty {
      color: var(--secondary-text-color);
      font-size: 12px;
    }
  `;
}

function errorText(err: unknown): string {
  if (err && typeof err === "object" && "message" in err) return String(err.message);
  return String(err);
}

if (!customElements.get("pm-dvr-camera")) customElements.define("pm-dvr-camera", PmDvrCamera);
