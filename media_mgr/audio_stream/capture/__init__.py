"""Audio from the module to the recording: where each chunk belongs, and silence where none came.

``clock.TrackClock`` places a track's chunks on its media clock and tells stalls from gaps;
``jitter.InterarrivalJitter`` measures the link; ``assembler.Assembler`` lays tracks side by side;
``pipeline.Capture`` runs them for one session and writes to its recording. All pure but the last.
"""
