// A strip of time: recorded spans, motion and events, with hour ticks. A tap or a drag picks a
// moment: `pm-dvr-seek` with {time, final} (final when the finger or the button is lifted).
import { LitElement, css, html, nothing, svg } from "lit";
import type { TimelineEvent } from "./types";

const TICK_STEPS = [300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400];
const MAX_TICKS = 8;
const WIDTH = 1000; // the SVG's own units; it is stretched to the element's width

export class PmDvrTimeline extends LitElement {
  static properties = {
    start: { type: Number },
    end: { type: Number },
    recordings: { attribute: false },
    motion: { attribute: false },
    events: { attribute: false },
    cursor: { type: Number },
    timeZone: { attribute: false },
    locale: { attribute: false },
  };

  start = 0;
  end = 1;
  recordings: [number, number][] = [];
  motion: [number, number][] = [];
  events: TimelineEvent[] = [];
  cursor: number | null = null;
  timeZone?: string;
  locale = "en";
  private scrubbing = false;

  private x(time: number): number {
    return ((time - this.start) / (this.end - this.start)) * WIDTH;
  }

  private bar(span: [number, number], y: number, h: number, kind: string) {
    const x0 = Math.max(0, this.x(span[0]));
    const x1 = Math.min(WIDTH, this.x(span[1]));
    if (x1 < 0 || x0 > WIDTH) return nothing;
    return svg`<rect class=${kind} x=${x0} y=${y} width=${Math.max(x1 - x0, 1.5)} height=${h}></rect>`;
  }

  private ticks(): { time: number; label: string }[] {
    const span = this.end - this.start;
    const step = TICK_STEPS.find((s) => span / s <= MAX_TICKS) ?? TICK_STEPS.at(-1)!;
    const format = new Intl.DateTimeFormat(this.locale, {
      timeZone: this.timeZone,
      ...(step >= 86400 ? { month: "short", day: "numeric" } : { hour: "2-digit", minute: "2-digit" }),
    });
    // Ticks on round local times: the offset of the zone at the start, in seconds.
    const offset = zoneOffset(this.start, this.timeZone);
    const first = Math.ceil((this.start + offset) / step) * step - offset;
    const ticks = [];
    for (let t = first; t <= this.end; t += step) {
      ticks.push({ time: t, label: format.format(new Date(t * 1000)) });
    }
    return ticks;
  }

  private timeAt(event: PointerEvent): number {
    const box = this.renderRoot.querySelector(".strip")!.getBoundingClientRect();
    const share = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    return this.start + share * (this.end - this.start);
  }

  private seek(event: PointerEvent, final: boolean) {
    this.dispatchEvent(
      new CustomEvent("pm-dvr-seek", {
        detail: { time: this.timeAt(event), final },
        bubbles: true,
        composed: true,
      }),
    );
  }

  private down(event: PointerEvent) {
    this.scrubbing = true;
    (event.currentTarget as HTMLElement).setPointerCapture(event.pointerId);
    this.seek(event, false);
  }

  private move(event: PointerEvent) {
    if (this.scrubbing) this.seek(event, false);
  }

  private up(event: PointerEvent) {
    if (!this.scrubbing) return;
    this.scrubbing = false;
    this.seek(event, true);
  }

  render() {
    const ticks = this.ticks();
    return html`
      <div
        class="strip"
        @pointerdown=${this.down}
        @pointermove=${this.move}
        @pointerup=${this.up}
        @pointercancel=${() => (this.scrubbing = false)}
      >
        <svg viewBox="0 0 ${WIDTH} 40" preserveAspectRatio="none" aria-hidden="true">
          <rect class="ground" x="0" y="4" width=${WIDTH} height="14"></rect>
          ${this.recordings.map((span) => this.bar(span, 4, 14, "recording"))}
          ${this.motion.map((span) => this.bar(span, 21, 7, "motion"))}
          ${this.events.map((e) =>
            this.bar([e.start, e.end ?? e.start + 1], 31, 7, e.keep ? "event kept" : "event"),
          )}
          ${ticks.map((t) => svg`<line class="tick" x1=${this.x(t.time)} x2=${this.x(t.time)} y1="0" y2="40"></line>`)}
          ${this.cursor === null
            ? nothing
            : svg`<line class="cursor" x1=${this.x(this.cursor)} x2=${this.x(this.cursor)} y1="0" y2="40"></line>`}
        </svg>
        <div class="labels">
          ${ticks.map((t) => {
            // A label at either edge stays inside the card.
            const left = (this.x(t.time) / WIDTH) * 100;
            const shift = left > 90 ? -100 : left < 10 ? 0 : -50;
            return html`<span style="left:${left}%;transform:translateX(${shift}%)">${t.label}</span>`;
          })}
        </div>
      </div>
    `;
  }

  static styles = css`
    :host {
      display: block;
      user-select: none;
      touch-action: pan-y;
    }
    .strip {
      position: relative;
      cursor: crosshair;
      padding-bottom: 16px;
    }
    svg {
      display: block;
      width: 100%;
      height: 48px;
    }
    .ground {
      fill: var(--secondary-background-color, #e5e5e5);
    }
    .recording {
      fill: var(--primary-color, #03a9f4);
    }
    .motion {
      fill: var(--warning-color, #ff9800);
    }
    .event {
      fill: var(--error-color, #db4437);
    }
    .event.kept {
      fill: var(--success-color, #43a047);
    }
    .tick {
      stroke: var(--divider-color, rgba(0, 0, 0, 0.12));
      stroke-width: 1;
      vector-effect: non-scaling-stroke;
    }
    .cursor {
      stroke: var(--primary-text-color, #212121);
      stroke-width: 2;
      vector-effect: non-scaling-stroke;
    }
    .labels {
      position: absolute;
      left: 0;
      right: 0;
      bottom: 0;
      height: 16px;
      font-size: 11px;
      color: var(--secondary-text-color, #727272);
    }
    .labels span {
      position: absolute;
      white-space: nowrap;
    }
  `;
}

/** Seconds to add to UTC to get the wall time of a zone (the browser's own when none). */
export function zoneOffset(time: number, timeZone?: string): number {
  const date = new Date(time * 1000);
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(date);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const wall = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return Math.round((wall - Math.floor(time) * 1000) / 1000);
}

if (!customElements.get("pm-dvr-timeline")) customElements.define("pm-dvr-timeline", PmDvrTimeline);
