// The parts of Home Assistant's frontend objects that the card uses.
export interface HassEntity {
  entity_id: string;
  state: string;
  attributes: Record<string, unknown> & { friendly_name?: string };
}

export interface EntityRegistryEntry {
  entity_id: string;
  device_id?: string | null;
  platform?: string;
  translation_key?: string | null;
}

export interface HomeAssistant {
  states: Record<string, HassEntity>;
  entities?: Record<string, EntityRegistryEntry>;
  language?: string;
  locale?: { language: string; time_zone?: string };
  config: { time_zone: string };
  callWS<T>(message: Record<string, unknown>): Promise<T>;
  callService(domain: string, service: string, data?: Record<string, unknown>): Promise<unknown>;
}

export interface CardConfig {
  type: string;
  cameras: string[];
  title?: string;
  hours?: number;
  columns?: number;
}

export interface TimelineEvent {
  id: string;
  label: string | null;
  trigger: string | null;
  start: number;
  end: number | null;
  state: string;
  keep: boolean;
  thumbnail: string | null;
}

export interface Timeline {
  start: number;
  end: number;
  recordings: [number, number][];
  motion: [number, number][];
  events: TimelineEvent[];
}

export interface Playback {
  url: string;
  time: number;
  start: number;
  mime_type: string;
}

export interface LovelaceCard extends HTMLElement {
  hass?: HomeAssistant;
}

declare global {
  interface Window {
    customCards?: { type: string; name: string; description: string; preview?: boolean }[];
    loadCardHelpers?: () => Promise<{
      createCardElement(config: Record<string, unknown>): LovelaceCard;
    }>;
  }
}
