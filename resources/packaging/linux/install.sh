#!/bin/sh
# Installs this Nightlamp bundle for the current user, or removes it (--uninstall):
#   the bundle  -> ~/.local/opt/nightlamp/     the command -> ~/.local/bin/nightlamp
#   menu entry, icons and AppStream metadata   -> ~/.local/share/
# Models, conversations and settings (~/.local/share/nightlamp) are never touched.
set -eu

APP_ID=io.github.nightlamp.Nightlamp
HERE=$(cd "$(dirname "$0")" && pwd -P)  # -P: a link to $OPT must not look like another copy
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
OPT=$HOME/.local/opt/nightlamp
BIN=$HOME/.local/bin

if [ "${1:-}" = "--uninstall" ]; then
    rm -rf "$OPT"
    rm -f "$BIN/nightlamp" "$DATA/applications/$APP_ID.desktop" "$DATA/metainfo/$APP_ID.metainfo.xml"
    find "$DATA/icons/hicolor" \( -name nightlamp.png -o -name nightlamp.svg \) -exec rm -f {} + 2>/dev/null || true
    echo "Nightlamp removed (your models and conversations are kept in $DATA/nightlamp)"
    exit 0
fi

if [ "$HERE" != "$OPT" ]; then
    rm -rf "$OPT"
    mkdir -p "$(dirname "$OPT")"
    cp -R "$HERE" "$OPT"
fi
mkdir -p "$BIN" "$DATA/applications" "$DATA/metainfo" "$DATA/icons"
ln -sf "$OPT/nightlamp" "$BIN/nightlamp"
cp -R "$OPT/share/icons/." "$DATA/icons/"
cp "$OPT/share/metainfo/$APP_ID.metainfo.xml" "$DATA/metainfo/"
# The menu entry runs the bundle by its full path: ~/.local/bin is not on every session's PATH.
# Exec quotes it (a home folder may have spaces); awk takes the path as data, not as a pattern.
awk -v exe="$OPT/nightlamp" '
    /^Exec=nightlamp/ { sub(/^Exec=nightlamp/, ""); print "Exec=\"" exe "\"" $0; next }
    /^TryExec=nightlamp/ { print "TryExec=" exe; next }
    { print }' "$OPT/share/applications/$APP_ID.desktop" > "$DATA/applications/$APP_ID.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$DATA/applications" || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$DATA/icons/hicolor" || true
echo "Nightlamp installed: $OPT (command: $BIN/nightlamp; in the menu as Nightlamp)"
