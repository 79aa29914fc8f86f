// @vistune/tasks-grounding public API (filled by the grounding and segmentation modules).
export {};
