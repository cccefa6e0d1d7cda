#!/usr/bin/env bash
# Makes dist/Nightlamp-<version>.dmg from PyInstaller's dist/Nightlamp.app. macOS only.
#
#   resources/packaging/macos/make_dmg.sh [VERSION]
#
# VERSION defaults to the one in pyproject.toml. Build the .app first with
# `python3 resources/packaging/build.py`. Not tested yet: no Mac was at hand.
set -euo pipefail

cd "$(dirname "$0")/../../.."   # the repository root, so the script runs from anywhere

die() { echo "make_dmg.sh: $*" >&2; exit 1; }

[[ $(uname -s) == Darwin ]] || die "hdiutil exists only on macOS"
VERSION=${1:-$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)}
[[ -n $VERSION ]] || die "no version given and none found in pyproject.toml"
APP=dist/Nightlamp.app
DMG=dist/Nightlamp-$VERSION.dmg
[[ -d $APP ]] || die "$APP is missing; run: python3 resources/packaging/build.py"

# Optional, before the DMG is made: sign the app with a Developer ID so Gatekeeper accepts it
# (notarization requires the hardened runtime and a secure timestamp). IDENTITY is the
# certificate's name, e.g. "Developer ID Application: Jane Doe (TEAMID)".
#   codesign --deep --force --options runtime --timestamp --sign "$IDENTITY" "$APP"
#   codesign --verify --deep --strict --verbose=2 "$APP"

# The window a user sees is the staging folder: the app plus a link to drop it on.
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/nightlamp-dmg.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
# ditto, unlike cp -R, keeps the bundle's symlinks, extended attributes and signature intact.
ditto "$APP" "$STAGE/Nightlamp.app"
ln -s /Applications "$STAGE/Applications"

hdiutil create -volname Nightlamp -srcfolder "$STAGE" -ov -format UDZO "$DMG"

# Optional, after: sign the DMG, have Apple notarize it, and staple the ticket so it also
# verifies offline. Store the credentials once with
#   xcrun notarytool store-credentials nightlamp-notary --apple-id ID --team-id TEAMID
# then:
#   codesign --force --timestamp --sign "$IDENTITY" "$DMG"
#   xcrun notarytool submit "$DMG" --keychain-profile nightlamp-notary --wait
#   xcrun stapler staple "$DMG"

echo "wrote $DMG"
