// Text helpers shared by the report's sections.

export const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** A number for SVG coordinates: one decimal, no "-0". */
export const n1 = (v: number): string => (Math.round(v * 10) / 10 || 0).toString();
