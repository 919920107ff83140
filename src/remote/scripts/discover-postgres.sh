# shellcheck shell=sh
# placeholder, replaced below
:
