"""mod_audio_stream's far end."""
