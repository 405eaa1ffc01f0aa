// pm_dvr's dashboard card: one panel per camera (live view, timeline, events, buttons) in a grid.
// The integration serves this file and registers it with the frontend itself.
import { LitElement, css, html, nothing } from "lit";
import "./camera";
import "./editor";
import { localize } from "./localize";
import type { CardConfig, HomeAssistant } from "./types";

export class PmDvrCard extends LitElement {
  static properties = {
    hass: { attribute: false },
    config: { state: true },
  };

  hass?: HomeAssistant;
  config?: CardConfig;

  setConfig(config: Partial<CardConfig> & { camera?: string }) {
    const cameras = config.cameras ?? (config.camera ? [config.camera] : []);
    if (!Array.isArray(cameras) || cameras.some((c) => typeof c !== "string")) {
      throw new Error("cameras must be a list of camera entities");
    }
    this.config = { ...config, type: config.type ?? "custom:pm-dvr-card", cameras };
  }

  static getConfigElement() {
    return document.createElement("pm-dvr-card-editor");
  }

  static getStubConfig(hass: HomeAssistant) {
    const camera = Object.values(hass.entities ?? {}).find(
      (e) => e.platform === "pm_dvr" && e.entity_id.startsWith("camera."),
    );
    return { cameras: camera ? [camera.entity_id] : [], hours: 24 };
  }

  getCardSize() {
    return 9 * Math.ceil((this.config?.cameras.length ?? 1) / (this.config?.columns ?? 1));
  }

  getGridOptions() {
    return { columns: 12, min_columns: 6, rows: "auto" };
  }

  render() {
    if (!this.config || !this.hass) return nothing;
    const cameras = this.config.cameras;
    const columns = Math.max(1, Math.min(this.config.columns ?? 1, cameras.length || 1));
    const unknown = cameras.filter((c) => !this.hass!.states[c]);
    return html`
      <ha-card .header=${this.config.title}>
        <div class="grid" style="--pm-dvr-columns:${columns}">
          ${cameras.length
            ? cameras
                .filter((c) => this.hass!.states[c])
                .map(
                  (c) => html`<pm-dvr-camera
                    .hass=${this.hass}
                    .entity=${c}
                    .hours=${this.config!.hours ?? 24}
                  ></pm-dvr-camera>`,
                )
            : html`<div class="note">${localize(this.hass, "card.no_camera")}</div>`}
          ${unknown.map(
            (c) => html`<div class="note">${localize(this.hass, "card.unknown_camera", { entity: c })}</div>`,
          )}
        </div>
      </ha-card>
    `;
  }

  static styles = css`
    .grid {
      display: grid;
      grid-template-columns: repeat(var(--pm-dvr-columns), minmax(0, 1fr));
      gap: 16px;
      padding: 0 16px 8px;
    }
    @media (max-width: 700px) {
      .grid {
        grid-template-columns: minmax(0, 1fr);
      }
    }
    .note {
      padding: 16px 0;
      color: var(--secondary-text-color);
    }
  `;
}

if (!customElements.get("pm-dvr-card")) customElements.define("pm-dvr-card", PmDvrCard);

window.customCards = window.customCards ?? [];
if (!window.customCards.some((c) => c.type === "pm-dvr-card")) {
  window.customCards.push({
    type: "pm-dvr-card",
    name: localize(undefined, "card.name"),
    description: localize(undefined, "card.description"),
    preview: false,
  });
}
