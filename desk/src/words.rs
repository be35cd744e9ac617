//! The desk's own words in Spanish, Portuguese and English. The report
//! form's labels (kinds of violence, needs, statuses) come from
//! `amparo_protocol::i18n`, so the desk names them as the phone does.

use amparo_protocol::directory::ServiceKind;
use amparo_protocol::payload::Language;
use amparo_protocol::statistics::Month;

macro_rules! words {
    ($($name:ident: $es:literal, $pt:literal, $en:literal;)*) => {
        /// Every sentence and label of the desk, in one language.
        pub struct Words {
            $(#[doc = $en] pub $name: &'static str,)*
        }
        /// Spanish.
        pub static ES: Words = Words { $($name: $es,)* };
        /// Portuguese.
        pub static PT: Words = Words { $($name: $pt,)* };
        /// English.
        pub static EN: Words = Words { $($name: $en,)* };
    };
}

words! {
    skip: "Ir al contenido", "Ir para o conteúdo", "Skip to content";
    nav: "Secciones", "Seções", "Sections";
    desk: "Mesa del punto focal", "Mesa do ponto focal", "Focal point's desk";
    cases: "Casos", "Casos", "Cases";
    sync: "Sincronizar", "Sincronizar", "Sync";
    unreadable: "Sobres ilegibles", "Envelopes ilegíveis", "Unreadable envelopes";
    directory: "Directorio", "Diretório", "Directory";
    lock: "Bloquear", "Bloquear", "Lock";
    language: "Idioma", "Idioma", "Language";
    change: "Cambiar", "Mudar", "Change";
    // Unlock
    unlock_title: "Desbloquear la mesa", "Desbloquear a mesa", "Unlock the desk";
    unlock_lead: "Los casos se descifran solo en esta computadora, con su PIN. Nada sale de ella sin cifrar.", "Os casos são decifrados só neste computador, com o seu PIN. Nada sai dele sem cifrar.", "Cases are decrypted only on this computer, with your PIN. Nothing leaves it unencrypted.";
    pin: "PIN", "PIN", "PIN";
    unlock: "Desbloquear", "Desbloquear", "Unlock";
    wrong_pin: "PIN incorrecto.", "PIN incorreto.", "Wrong PIN.";
    failed_attempts: "Intentos fallidos seguidos", "Tentativas falhas seguidas", "Failed attempts in a row";
    wait_before: "Espere antes de volver a intentar (segundos)", "Espere antes de tentar de novo (segundos)", "Wait before trying again (seconds)";
    wipe_after: "El perfil se borra tras este número de intentos fallidos", "O perfil é apagado após este número de tentativas falhas", "The profile is wiped after this many failed attempts";
    wiped: "El perfil fue borrado tras demasiados intentos fallidos.", "O perfil foi apagado após tentativas falhas demais.", "The profile was wiped after too many failed attempts.";
    no_profile: "No hay un perfil en esta carpeta.", "Não há um perfil nesta pasta.", "There is no profile in this folder.";
    device_needed: "Este perfil solo se abre con su clave de dispositivo: inicie la mesa con --device-key.", "Este perfil só abre com a sua chave de dispositivo: inicie a mesa com --device-key.", "This profile opens only with its device key: start the desk with --device-key.";
    locked_out: "Sesión cerrada: vuelva a abrir la mesa con el enlace que mostró al iniciarse.", "Sessão encerrada: abra a mesa de novo com o link que mostrou ao iniciar.", "Session ended: open the desk again with the link it showed when it started.";
    idle_note: "Minutos sin uso antes de que se bloquee sola", "Minutos sem uso antes de se bloquear sozinha", "Minutes idle before it locks itself";
    // Cases
    search: "Buscar en el texto", "Buscar no texto", "Search the text";
    search_hint: "Palabras del relato, la conversación o las notas (sin importar tildes).", "Palavras do relato, da conversa ou das notas (sem importar acentos).", "Words from her account, the conversation or the notes (accents ignored).";
    status: "Estado", "Estado", "Status";
    region: "Región", "Região", "Region";
    violence: "Violencia", "Violência", "Violence";
    aggressor: "Agresor", "Agressor", "Aggressor";
    needs: "Necesidades", "Necessidades", "Needs";
    any: "Todos", "Todos", "Any";
    from_date: "Desde", "De", "From";
    to_date: "Hasta", "Até", "To";
    unread_only: "Solo no leídos", "Só não lidos", "Unread only";
    starred_only: "Solo destacados", "Só destacados", "Starred only";
    starred: "Destacado", "Destacado", "Starred";
    star: "Destacar", "Destacar", "Star";
    unstar: "Quitar el destacado", "Tirar o destaque", "Unstar";
    sort: "Orden", "Ordem", "Sort";
    sort_received: "Recibido", "Recebido", "Received";
    sort_activity: "Última actividad", "Última atividade", "Last activity";
    newest_first: "Más recientes primero", "Mais recentes primeiro", "Newest first";
    filter: "Filtrar", "Filtrar", "Filter";
    clear: "Limpiar", "Limpar", "Clear";
    showing: "casos que coinciden, de", "casos que coincidem, de", "matching cases, of";
    unread: "sin leer", "não lidos", "unread";
    new_mark: "Nuevo", "Novo", "New";
    alert_mark: "ALERTA", "ALERTA", "ALERT";
    alert_why: "Alerta de temporizador: dejó de hacer check-in. Actúe ahora.", "Alerta de temporizador: ela parou de fazer check-in. Aja agora.", "Timer alert: she stopped checking in. Act now.";
    alert_set: "Temporizador puesto", "Temporizador ativado", "Timer set";
    alert_due: "Debía salir", "Devia sair", "Due to go";
    alert_every: "Cada check-in compraba (horas)", "Cada check-in comprava (horas)", "Each check-in bought (hours)";
    alert_received: "Recibida aquí (salió en esa hora o antes)", "Recebido aqui (saiu nessa hora ou antes)", "Received here (released in that hour or before)";
    received: "Recibido", "Recebido", "Received";
    attachments: "Adjuntos", "Anexos", "Attachments";
    open_case: "Abrir caso", "Abrir caso", "Open case";
    no_cases: "Ningún caso coincide.", "Nenhum caso coincide.", "No case matches.";
    previous: "Anterior", "Anterior", "Previous";
    next: "Siguiente", "Próxima", "Next";
    page: "Página", "Página", "Page";
    of: "de", "de", "of";
    // Case
    case: "Caso", "Caso", "Case";
    report: "Denuncia", "Denúncia", "Report";
    when: "Cuándo", "Quando", "When";
    approximate: "aproximado", "aproximado", "approximate";
    place: "Dónde", "Onde", "Where";
    her_words: "Sus palabras", "Suas palavras", "Her words";
    reply_in: "Responder en", "Responder em", "Reply in";
    referred_by: "Derivado por", "Encaminhado por", "Referred by";
    referral_note: "Nota de derivación", "Nota de encaminhamento", "Referral note";
    referred_to: "Derivado a", "Encaminhado a", "Referred to";
    incomplete: "Aún llegando: faltan partes o no coinciden con su SHA-256.", "Ainda chegando: faltam partes ou não coincidem com seu SHA-256.", "Still arriving: pieces are missing or do not match its SHA-256.";
    download: "Descargar", "Baixar", "Download";
    bytes: "bytes", "bytes", "bytes";
    photo_of_case: "Foto adjunta al caso", "Foto anexada ao caso", "Photo attached to the case";
    conversation: "Conversación", "Conversa", "Conversation";
    from_her: "Ella", "Ela", "She";
    from_office: "Esta oficina", "Este escritório", "This office";
    status_set: "Estado", "Estado", "Status";
    no_conversation: "Aún no hay mensajes.", "Ainda não há mensagens.", "No messages yet.";
    reply: "Responder", "Responder", "Reply";
    reply_label: "Respuesta (se sella a su canal y sale en la próxima sincronización)", "Resposta (lacrada ao canal dela; sai na próxima sincronização)", "Reply (sealed to her channel; it goes at the next sync)";
    send_reply: "Enviar respuesta", "Enviar resposta", "Send reply";
    set_status: "Cambiar el estado", "Mudar o estado", "Set status";
    status_message: "Mensaje para ella (opcional)", "Mensagem para ela (opcional)", "Message to her (optional)";
    stage: "Etapa", "Etapa", "Stage";
    stage_lead: "Etapa del trabajo de esta oficina (evaluación, plan, servicios…): interna, nunca se envía; ella solo ve el estado.", "Etapa do trabalho deste escritório (avaliação, plano, serviços…): interna, nunca é enviada; ela só vê o estado.", "Where this office's own work stands (assessment, plan, services…): internal, never sent; she sees only the status.";
    set_stage: "Cambiar la etapa", "Mudar a etapa", "Set stage";
    done_stage: "Etapa guardada (interna).", "Etapa guardada (interna).", "Stage saved (internal).";
    history: "Historial de estados", "Histórico de estados", "Status history";
    notes: "Notas internas", "Notas internas", "Internal notes";
    notes_lead: "Solo para esta oficina: nunca se envían, tampoco al derivar.", "Só para este escritório: nunca são enviadas, nem ao encaminhar.", "For this office only: never sent, not even with a referral.";
    add_note: "Agregar nota", "Adicionar nota", "Add note";
    note: "Nota", "Nota", "Note";
    no_notes: "Sin notas.", "Sem notas.", "No notes.";
    refer: "Derivar", "Encaminhar", "Refer";
    refer_lead: "El caso y sus adjuntos se sellan de nuevo a la clave del otro punto focal. Ella solo ve a dónde fue.", "O caso e seus anexos são lacrados de novo para a chave do outro ponto focal. Ela só vê para onde foi.", "The case and its attachments are sealed again to the other focal point's key. She only sees where it went.";
    refer_to: "Punto focal", "Ponto focal", "Focal point";
    refer_note: "Nota para la otra oficina", "Nota para o outro escritório", "Note for the other office";
    matches_case: "atiende su región y lo que pide", "atende sua região e o que pede", "serves her region and what she asks";
    no_targets: "El directorio no tiene otro punto focal vigente.", "O diretório não tem outro ponto focal vigente.", "The directory has no other valid focal point.";
    export: "Exportar", "Exportar", "Export";
    print: "Imprimir", "Imprimir", "Print";
    export_html: "Descargar como página HTML", "Baixar como página HTML", "Download as an HTML page";
    done_reply: "Respuesta sellada; sale en la próxima sincronización.", "Resposta lacrada; sai na próxima sincronização.", "Reply sealed; it goes at the next sync.";
    done_status: "Estado cambiado; ella lo sabrá en la próxima sincronización.", "Estado mudado; ela saberá na próxima sincronização.", "Status set; she learns it at the next sync.";
    done_note: "Nota guardada.", "Nota guardada.", "Note saved.";
    done_refer: "Caso derivado; sale en la próxima sincronización.", "Caso encaminhado; sai na próxima sincronização.", "Case referred; it goes at the next sync.";
    // Statistics on the case
    stat_setting: "Tipo de lugar", "Tipo de lugar", "Kind of place";
    stat_age: "Edad entonces", "Idade então", "Age then";
    stat_elsewhere: "Lo contó a otra organización", "Contou a outra organização", "Told another organisation";
    stat_consent: "Acepta que se cuente en estadísticas", "Aceita ser contada nas estatísticas", "Agrees to be counted in statistics";
    yes: "Sí", "Sim", "Yes";
    no: "No", "Não", "No";
    not_said: "No lo dijo", "Não disse", "Not said";
    classification: "Clasificación (GBVIMS)", "Classificação (GBVIMS)", "Classification (GBVIMS)";
    classify_lead: "Interna: nunca se envía; solo se usa en las estadísticas que ella aceptó.", "Interna: nunca é enviada; só é usada nas estatísticas que ela aceitou.", "Internal: never sent; used only in statistics she agreed to.";
    current_classification: "Clasificación actual", "Classificação atual", "Current classification";
    gbv_type: "Tipo de incidente", "Tipo de incidente", "Type of incident";
    not_classified: "Sin clasificar", "Sem classificação", "Not classified";
    context: "Contexto (marque los que correspondan)", "Contexto (marque os que se aplicam)", "Context (tick any that apply)";
    save_classification: "Guardar la clasificación", "Guardar a classificação", "Save classification";
    done_classify: "Clasificación guardada (interna).", "Classificação guardada (interna).", "Classification saved (internal).";
    not_counted_because: "No entra en las estadísticas:", "Não entra nas estatísticas:", "Not counted in statistics:";
    // Statistics
    stats: "Estadísticas", "Estatísticas", "Statistics";
    stats_lead: "Las cifras de esta oficina, por el mes en que se escribió cada denuncia. Solo cuentan los casos que ella aceptó contar, recibidos aquí primero y ya clasificados. Aquí se ven todas las cuentas; a la coordinación solo sale lo que se muestra abajo.", "Os números deste escritório, pelo mês em que cada denúncia foi escrita. Só contam os casos que ela aceitou contar, recebidos aqui primeiro e já classificados. Aqui se veem todas as contagens; para a coordenação só sai o que aparece abaixo.", "This office's figures, by the month each report was written. Only cases she agreed to count, received here first and already classified are counted. Every count shows here; only what is shown below leaves for the coordinator.";
    month: "Mes", "Mês", "Month";
    show: "Ver", "Ver", "Show";
    no_stats: "Aún no hay casos que contar.", "Ainda não há casos para contar.", "No cases to count yet.";
    cases_in_month: "Casos escritos en el mes", "Casos escritos no mês", "Cases written in the month";
    counted: "Contados", "Contados", "Counted";
    not_counted: "No contados", "Não contados", "Not counted";
    excl_no_consent: "Ella no aceptó que se cuente", "Ela não aceitou ser contada", "She did not agree to be counted";
    excl_elsewhere: "Lo contó también a otra organización (se cuenta allí)", "Contou também a outra organização (é contado lá)", "Also reported to another organisation (counted there)";
    excl_referred: "Llegó derivado (lo cuenta la oficina que lo derivó)", "Chegou encaminhado (conta o escritório que encaminhou)", "Came by referral (the referring office counts it)";
    excl_unclassified: "Aún sin clasificar", "Ainda sem classificação", "Not yet classified";
    classify_them: "Clasifíquelos en su página para que cuenten:", "Classifique-os na sua página para que contem:", "Classify them on their page so they count:";
    more: "más", "mais", "more";
    month_cases: "Ver los casos del mes", "Ver os casos do mês", "See the month's cases";
    place_col: "Lugar", "Lugar", "Place";
    no_region: "Sin región", "Sem região", "No region";
    other_places: "Otros lugares", "Outros lugares", "Other places";
    dim_gbv_type: "Tipo de incidente (GBVIMS)", "Tipo de incidente (GBVIMS)", "Type of incident (GBVIMS)";
    dim_age: "Edad", "Idade", "Age";
    dim_delay: "Tiempo hasta la denuncia", "Tempo até a denúncia", "Time to report";
    unknown: "No consta", "Não consta", "Not known";
    several: "Varios", "Vários", "Several";
    by_place: "por lugar y tipo de lugar", "por lugar e tipo de lugar", "by place and kind of place";
    chart_of: "Gráfico de barras", "Gráfico de barras", "Bar chart";
    context_flag: "Contexto", "Contexto", "Context";
    context_counts: "Contexto (un caso puede tener varios)", "Contexto (um caso pode ter vários)", "Context (a case may have several)";
    nothing_counted: "Ningún caso contado este mes.", "Nenhum caso contado neste mês.", "No case counted this month.";
    share: "Compartir con la coordinación", "Compartilhar com a coordenação", "Share with the coordinator";
    share_lead: "Lo que saldría de esta computadora: solo cuentas, sin palabras, nombres ni fechas; sellado para la coordinación y firmado por esta oficina.", "O que sairia deste computador: só contagens, sem palavras, nomes nem datas; lacrado para a coordenação e assinado por este escritório.", "What would leave this computer: counts only, no words, names or dates; sealed to the coordinator and signed by this office.";
    would_share: "Lo que se compartiría", "O que seria compartilhado", "What would be shared";
    shared_as_sent: "Compartido el {at}: la tabla tal como salió.", "Compartilhado em {at}: a tabela tal como saiu.", "Shared on {at}: the table as it left.";
    suppressed_legend: "no compartido: menos de {n}, o podría revelar uno", "não compartilhado: menos de {n}, ou poderia revelar um", "not shared: fewer than {n}, or could reveal one";
    not_shared: "no compartido", "não compartilhado", "not shared";
    below_threshold: "Este mes tiene menos de {n} casos contados: la tabla solo dice eso.", "Este mês tem menos de {n} casos contados: a tabela só diz isso.", "This month has fewer than {n} counted cases: the table says only that.";
    fewer_than: "menos de {n}", "menos de {n}", "fewer than {n}";
    published: "Meses ya compartidos", "Meses já compartilhados", "Months already shared";
    none_published: "Aún no se compartió ningún mes.", "Ainda não foi compartilhado nenhum mês.", "No month shared yet.";
    shared_on: "Compartido el", "Compartilhado em", "Shared on";
    publish: "Compartir {month} con la coordinación", "Compartilhar {month} com a coordenação", "Share {month} with the coordinator";
    publish_confirm: "Se envía una sola vez, en la próxima sincronización, y después no se puede cambiar ni retirar.", "É enviado uma única vez, na próxima sincronização, e depois não pode ser mudado nem retirado.", "It is sent once, at the next sync, and cannot be changed or withdrawn afterwards.";
    month_not_over: "Un mes se puede compartir cuando termina.", "Um mês pode ser compartilhado quando termina.", "A month can be shared once it is over.";
    done_publish: "Mes compartido: sale en la próxima sincronización.", "Mês compartilhado: sai na próxima sincronização.", "Month shared: it goes at the next sync.";
    sum_title: "La suma entre oficinas", "A soma entre escritórios", "The sum across offices";
    sum_lead: "Con la suma, la coordinación ve solo el total de varias oficinas (al menos 3), nunca la tabla de esta: cada oficina envía su mes enmascarado y, al cerrar la ronda, las partes que guarda para que se quiten las máscaras del total y de nada más. Un mes que entra en la suma no se comparte aparte.", "Com a soma, a coordenação vê só o total de vários escritórios (pelo menos 3), nunca a tabela deste: cada escritório envia seu mês mascarado e, ao fechar a rodada, as partes que guarda para que se tirem as máscaras do total e de nada mais. Um mês que entra na soma não é compartilhado à parte.", "With the sum, the coordinator sees only the total of several offices (at least 3), never this office's table: each office sends its masked month and, when the round closes, the shares it holds so the masks come off the total and nothing else. A month in the sum is not shared on its own.";
    sum_button: "Tomar parte en la suma", "Participar da soma", "Take part in the sum";
    sum_confirm: "Hace las claves de este año (una vez) y responde a las rondas abiertas; sale en la próxima sincronización.", "Faz as chaves deste ano (uma vez) e responde às rodadas abertas; sai na próxima sincronização.", "Makes this year's keys (once) and answers the open rounds; it goes at the next sync.";
    sum_none: "Todavía no llegó ninguna ronda de la coordinación.", "Ainda não chegou nenhuma rodada da coordenação.", "No round from the coordinator yet.";
    sum_offices: "Oficinas de la ronda (revise que sean las que conoce)", "Escritórios da rodada (confira que sejam os que conhece)", "Offices in the round (check they are the ones you know)";
    sum_waiting: "en espera", "em espera", "waiting";
    sum_sent: "mes enviado", "mês enviado", "month sent";
    sum_revealed: "partes enviadas", "partes enviadas", "shares sent";
    sum_refused: "no participa", "não participa", "not taking part";
    done_aggregate: "Suma: lo que había que enviar sale en la próxima sincronización.", "Soma: o que havia para enviar sai na próxima sincronização.", "Sum: what there was to send goes at the next sync.";
    // Sync
    sync_now: "Sincronizar ahora", "Sincronizar agora", "Sync now";
    sync_lead: "Envía lo que espera salir y trae el buzón. La mesa funciona sin conexión; lo escrito espera aquí.", "Envia o que aguarda para sair e traz a caixa. A mesa funciona sem conexão; o que foi escrito espera aqui.", "Sends what is waiting to go out and fetches the mailbox. The desk works offline; what you write waits here.";
    waiting_out: "Esperando salir (respuestas, estados, derivaciones)", "Aguardando para sair (respostas, estados, encaminhamentos)", "Waiting to go out (replies, statuses, referrals)";
    every_minutes: "Sincronización automática cada (minutos)", "Sincronização automática a cada (minutos)", "Automatic sync every (minutes)";
    off: "desactivada", "desativada", "off";
    sync_running: "Sincronizando…", "Sincronizando…", "Syncing…";
    sync_sending: "Enviando", "Enviando", "Sending";
    sync_fetched: "sobres traídos", "envelopes trazidos", "envelopes fetched";
    sync_new: "casos nuevos", "casos novos", "new cases";
    sync_messages: "mensajes", "mensagens", "messages";
    sync_sent: "enviados", "enviados", "sent";
    sync_postponed: "pospuestos (el relay estaba lleno u ocupado)", "adiados (o relay estava cheio ou ocupado)", "postponed (the relay was full or busy)";
    sync_done: "Sincronización terminada", "Sincronização concluída", "Sync finished";
    sync_failed: "La sincronización falló", "A sincronização falhou", "Sync failed";
    sync_more: "Quedan más sobres en el buzón (¿basura?): sincronice de nuevo.", "Restam mais envelopes na caixa (lixo?): sincronize de novo.", "More envelopes wait in the mailbox (junk?): sync again.";
    sync_unreachable: "No se pudo llegar al relay (¿sin conexión?): lo escrito sigue aquí y sale en la próxima sincronización.", "Não foi possível chegar ao relay (sem conexão?): o que foi escrito continua aqui e sai na próxima sincronização.", "The relay could not be reached (offline?): what you wrote stays here and goes at the next sync.";
    never_synced: "Aún no se sincronizó en esta sesión.", "Ainda não sincronizou nesta sessão.", "Not synced yet in this session.";
    last_sync: "Última sincronización", "Última sincronização", "Last sync";
    not_listed: "Atención: el directorio no lista este punto focal con sus claves; las denuncias no pueden llegar.", "Atenção: o diretório não lista este ponto focal com suas chaves; as denúncias não podem chegar.", "Warning: the directory does not list this focal point with its keys; reports cannot reach it.";
    // Rejected
    rejected_lead: "Sobres que no se pudieron abrir: basura, alterados o no dirigidos a esta oficina. Solo se guardan cuentas y unos pocos registros.", "Envelopes que não puderam ser abertos: lixo, alterados ou não dirigidos a este escritório. Só se guardam contagens e alguns registros.", "Envelopes that could not be opened: junk, tampered, or not for this office. Only counts and a few records are kept.";
    reason: "Motivo", "Motivo", "Reason";
    count: "Cantidad", "Quantidade", "Count";
    total: "Total", "Total", "Total";
    none_unreadable: "Ningún sobre ilegible.", "Nenhum envelope ilegível.", "No unreadable envelopes.";
    clear_rejected: "Borrarlos", "Apagá-los", "Clear them";
    done_cleared: "Borrados.", "Apagados.", "Cleared.";
    first_last: "Entre", "Entre", "Between";
    reason_does_not_open: "No se abren con las claves de este punto focal (sellados a otra clave, o alterados): basura o ataque", "Não abrem com as chaves deste ponto focal (lacrados para outra chave, ou alterados): lixo ou ataque", "Do not open with this focal point's keys (sealed to another key, or altered): junk or an attack";
    reason_malformed: "Se abren, pero su contenido está dañado", "Abrem, mas seu conteúdo está danificado", "Open, but what is inside is damaged";
    reason_unknown_case: "Mensajes de seguimiento de un caso que este punto focal no tiene", "Mensagens de acompanhamento de um caso que este ponto focal não tem", "Follow-ups for a case this focal point does not hold";
    reason_not_for_focal: "Actualizaciones de estado, que solo reciben las personas que denuncian", "Atualizações de estado, que só as pessoas que denunciam recebem", "Status updates, which only the people reporting receive";
    reason_other: "Otros motivos", "Outros motivos", "Other reasons";
    // Directory
    dir_lead: "Lo que ven las personas que denuncian: los puntos focales y las rutas de servicio, firmados por la coordinación.", "O que veem as pessoas que denunciam: os pontos focais e as rotas de serviço, assinados pela coordenação.", "What people who report see: the focal points and service routes, signed by the coordination.";
    version: "Versión", "Versão", "Version";
    signer: "Firmado por (clave de la coordinación)", "Assinado por (chave da coordenação)", "Signed by (coordinator's key)";
    no_directory: "Esta mesa aún no tiene directorio: sincronice.", "Esta mesa ainda não tem diretório: sincronize.", "This desk holds no directory yet: sync.";
    focal_points: "Puntos focales", "Pontos focais", "Focal points";
    name: "Nombre", "Nome", "Name";
    organization: "Organización", "Organização", "Organization";
    regions: "Regiones", "Regiões", "Regions";
    languages: "Idiomas", "Idiomas", "Languages";
    valid: "Vigencia", "Vigência", "Valid";
    valid_now: "vigente", "vigente", "valid now";
    not_valid_now: "no vigente", "não vigente", "not valid now";
    this_office: "esta oficina", "este escritório", "this office";
    service_routes: "Rutas de servicio", "Rotas de serviço", "Service routes";
    service: "Servicio", "Serviço", "Service";
    no_routes: "El directorio no tiene rutas de servicio.", "O diretório não tem rotas de serviço.", "The directory has no service routes.";
    contact: "Contacto", "Contato", "Contact";
    description: "Descripción", "Descrição", "Description";
    // Errors
    refused_host: "Esta mesa solo responde en su propia dirección.", "Esta mesa só responde no seu próprio endereço.", "This desk answers only on its own address.";
    refused_cross: "Se rechazan las solicitudes de otros sitios.", "Solicitações de outros sites são recusadas.", "Requests from other sites are refused.";
    stale_form: "Este formulario caducó: recargue la página e intente de nuevo.", "Este formulário expirou: recarregue a página e tente de novo.", "This form is stale: reload the page and try again.";
    is_locked: "La mesa está bloqueada: desbloquéela primero.", "A mesa está bloqueada: desbloqueie-a primeiro.", "The desk is locked: unlock it first.";
    not_allowed: "No permitido.", "Não permitido.", "Not allowed.";
    error: "No se pudo", "Não foi possível", "Could not do it";
    not_found: "No existe.", "Não existe.", "Not found.";
    back: "Volver", "Voltar", "Back";
}

/// The words in `lang`.
pub fn words(lang: Language) -> &'static Words {
    match lang {
        Language::Es => &ES,
        Language::Pt => &PT,
        Language::En => &EN,
    }
}

/// A kind of service, in `lang` (the directory's service routes).
pub fn service_kind(kind: ServiceKind, lang: Language) -> &'static str {
    let [es, pt, en] = match kind {
        ServiceKind::HealthCare => ["Salud", "Saúde", "Health care"],
        ServiceKind::StiHivPep => ["ITS/VIH y PEP", "IST/HIV e PEP", "STI/HIV and PEP"],
        ServiceKind::LegalAid => ["Asistencia legal", "Assistência jurídica", "Legal aid"],
        ServiceKind::Shelter => ["Refugio", "Abrigo", "Shelter"],
        ServiceKind::MentalHealth => ["Salud mental", "Saúde mental", "Mental health"],
        ServiceKind::MigrationSupport => [
            "Apoyo a migrantes",
            "Apoio a migrantes",
            "Migration support",
        ],
    };
    match lang {
        Language::Es => es,
        Language::Pt => pt,
        Language::En => en,
    }
}

/// A month by name, in `lang` ("septiembre de 2026").
pub fn month_name(month: Month, lang: Language) -> String {
    const ES: [&str; 12] = [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ];
    const PT: [&str; 12] = [
        "janeiro",
        "fevereiro",
        "março",
        "abril",
        "maio",
        "junho",
        "julho",
        "agosto",
        "setembro",
        "outubro",
        "novembro",
        "dezembro",
    ];
    const EN: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let names = match lang {
        Language::Es => &ES,
        Language::Pt => &PT,
        Language::En => &EN,
    };
    let Some(name) = names.get(usize::from(month.month).wrapping_sub(1)) else {
        return month.to_string();
    };
    match lang {
        Language::En => format!("{name} {}", month.year),
        _ => format!("{name} de {}", month.year),
    }
}

/// The language from an `Accept-Language` header: the first of es, pt, en
/// it names, else Spanish (the language of most of the people it serves).
pub fn from_accept_language(header: Option<&str>) -> Language {
    header
        .into_iter()
        .flat_map(|h| h.split(','))
        .filter_map(|part| {
            let tag = part.split(';').next()?.trim().to_ascii_lowercase();
            match tag.get(..2)? {
                "es" => Some(Language::Es),
                "pt" => Some(Language::Pt),
                "en" => Some(Language::En),
                _ => None,
            }
        })
        .next()
        .unwrap_or(Language::Es)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browser_language_is_followed() {
        assert_eq!(
            from_accept_language(Some("pt-BR,pt;q=0.9,en;q=0.5")),
            Language::Pt
        );
        assert_eq!(
            from_accept_language(Some("de-DE, en-GB;q=0.8")),
            Language::En
        );
        assert_eq!(from_accept_language(Some("fr")), Language::Es);
        assert_eq!(from_accept_language(None), Language::Es);
    }
}
