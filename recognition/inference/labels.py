"""Label sets. The served models' own class lists come from their model cards (models/*.json);
these constants are the canonical orders that training writes into those cards."""
FACE_EMOTIONS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
VOICE_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
