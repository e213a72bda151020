"""The prompt both twins share, one module per idea (docs/how-it-works.md has the map).

What the user typed (commands) and how it is read (reading); what is printed, each line worded
once for both twins (answers, seed_and_database, summaries, messages, with text and colour
beneath them); where it is written (console) and the live status a terminal shows
(live_status); the settings and the first ping (arguments, startup); and signals. cli/ may
import config/ and simulator/; they never import it.
"""
