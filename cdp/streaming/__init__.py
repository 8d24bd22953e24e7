"""The real-time path (~5%): replay into the stream, consume into the lake."""
