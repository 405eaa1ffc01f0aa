// The card's texts, in the user's Home Assistant language (English when there is no table).
import de from "./translations/de.json";
import en from "./translations/en.json";
import type { HomeAssistant } from "./types";

type Table = { [key: string]: string | Table };
const TABLES: Record<string, Table> = { de, en };

function lookup(table: Table, key: string): string | undefined {
  let node: string | Table | undefined = table;
  for (const part of key.split(".")) {
    node = typeof node === "object" ? node[part] : undefined;
  }
  return typeof node === "string" ? node : undefined;
}

export function language(hass?: HomeAssistant): string {
  return hass?.locale?.language ?? hass?.language ?? "en";
}

export function localize(
  hass: HomeAssistant | undefined,
  key: string,
  values: Record<string, string> = {},
): string {
  const lang = language(hass);
  const table = TABLES[lang] ?? TABLES[lang.split("-")[0]] ?? en;
  const text = lookup(table, key) ?? lookup(en, key) ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => values[name] ?? whole);
}
