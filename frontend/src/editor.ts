// The card's visual editor: Home Assistant's own form, with a camera picker limited to pm_dvr.
import { LitElement, html, nothing } from "lit";
import { localize } from "./localize";
import type { CardConfig, HomeAssistant } from "./types";

const SCHEMA = [
  {
    name: "cameras",
    selector: { entity: { multiple: true, filter: { integration: "pm_dvr", domain: "camera" } } },
  },
  { name: "title", selector: { text: {} } },
  { name: "hours", selector: { number: { min: 1, max: 720, mode: "box", unit_of_measurement: "h" } } },
  { name: "columns", selector: { number: { min: 1, max: 4, mode: "box" } } },
];

export class PmDvrCardEditor extends LitElement {
  static properties = {
    hass: { attribute: false },
    config: { state: true },
  };

  hass?: HomeAssistant;
  config?: CardConfig;

  setConfig(config: CardConfig & { camera?: string }) {
    const { camera, ...rest } = config;
    this.config = { ...rest, cameras: config.cameras ?? (camera ? [camera] : []) };
  }

  private changed(event: CustomEvent<{ value: CardConfig }>) {
    this.config = event.detail.value;
    this.dispatchEvent(
      new CustomEvent("config-changed", {
        detail: { config: this.config },
        bubbles: true,
        composed: true,
      }),
    );
  }

  render() {
    if (!this.hass || !this.config) return nothing;
    return html`<ha-form
      .hass=${this.hass}
      .data=${this.config}
      .schema=${SCHEMA}
      .computeLabel=${(field: { name: string }) => localize(this.hass, `editor.${field.name}`)}
      @value-changed=${this.changed}
    ></ha-form>`;
  }
}

if (!customElements.get("pm-dvr-card-editor")) {
  customElements.define("pm-dvr-card-editor", PmDvrCardEditor);
}
