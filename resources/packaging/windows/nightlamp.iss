; Inno Setup script: packs PyInstaller's one-folder build (dist\nightlamp\) into
; dist\NightlampSetup-<version>.exe. Needs Inno Setup 6.3 or later (for "x64compatible").
;
;   iscc /DAppVersion=0.1.0 resources\packaging\windows\nightlamp.iss
;
; Not compiled or tested yet: no Windows machine was at hand (see ..\README.md).

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=0.1.0 nightlamp.iss
#endif

#define AppName "Nightlamp"
; The windowed executable (no console window); nightlamp.exe next to it is the command line.
#define AppExe "nightlamp-gui.exe"

[Setup]
; The AppId ties upgrades and the uninstaller to this product: never change it. (The doubled
; brace escapes the "{" that would otherwise start an Inno constant.)
AppId={{78AEEEEA-BF88-4CA6-AC87-D7D51881D3D0}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=The Nightlamp developers
AppPublisherURL=https://github.com/nightlamp/nightlamp
AppSupportURL=https://github.com/nightlamp/nightlamp/issues
; Every relative path below (sources, icon, output) is taken from the repository root.
SourceDir=..\..\..
OutputDir=dist
OutputBaseFilename=NightlampSetup-{#AppVersion}
SetupIconFile=resources\icons\nightlamp.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName}
; Per-user by default, so no administrator rights are needed; the dialog still offers an
; all-users install. {autopf} is then %LOCALAPPDATA%\Programs or Program Files respectively.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; PyInstaller builds for the architecture of the Python that ran it; ONNX Runtime's CUDA build
; is x64 only. Installing in 64-bit mode keeps {autopf} out of "Program Files (x86)".
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
; Qt 6 supports Windows 10 and later.
MinVersion=10.0
WizardStyle=modern
Compression=lzma2
SolidCompression=yes
; Lets the Restart Manager close a running Nightlamp before files are replaced.
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; An upgrade must not leave the previous version's libraries next to the new ones: PyInstaller
; loads whatever sits in _internal, and a stale DLL there can break start-up.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "dist\nightlamp\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
; nightlamp-gui.exe always opens the window (resources/packaging/entry_gui.py).
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{app}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{app}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

; The uninstaller removes only what Setup installed. Models, chat history and settings live in
; %LOCALAPPDATA%\nightlamp (or %NIGHTLAMP_HOME%) and are kept: they are the user's data, often
; large downloads, and a later reinstall finds them again.
