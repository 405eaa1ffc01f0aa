"""pm_dvr's core library: recording, motion, events, retention and sync, with no Home Assistant imports."""
