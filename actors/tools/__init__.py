"""actors/tools"""
