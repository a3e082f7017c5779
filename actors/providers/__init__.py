"""actors/providers"""
