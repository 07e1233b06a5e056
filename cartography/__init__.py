"""Map builders: pure functions from data to Folium/Leaflet maps.

The ground floor of the project's cartography: it imports no app, so every app that
draws a map (directory, maps, coverage, matching) may use it.
"""
